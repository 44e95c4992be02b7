# Copyright (c) OpenMMLab. All rights reserved.
"""GalleryIndex on hand-made detections: checks, files, search."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmps.structures import (INDEX_FORMAT, GalleryIndex, GalleryIndexError,
                             SearchHit)


def make_index(model_id='abc'):
    feats = np.array([[1, 0], [0, 1], [0.6, 0.8], [-1, 0]], np.float32)
    return GalleryIndex(
        img_paths=['/g/a.jpg', '/g/b.jpg', '/g/c.jpg'],
        det_img=np.array([0, 0, 1, 2]),
        boxes=np.arange(16, dtype=np.float32).reshape(4, 4),
        scores=np.array([0.875, 0.375, 0.75, 0.9375], np.float32),
        feats=feats,
        model_id=model_id,
        meta=dict(config='cfg.py', checkpoint='w.pth'))


def test_search_ranks_and_filters():
    index = make_index()
    assert len(index) == 4 and index.num_images == 3 and index.feat_dim == 2
    hits = index.search(np.array([1, 0], np.float32), topk=None, det_thresh=0)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert [h.img_index for h in hits] == [0, 1, 0, 2]
    assert hits[0] == SearchHit(1, '/g/a.jpg', 0, (0., 1., 2., 3.), 0.875, 1.0)
    # the score threshold, a gallery subset, images left out
    assert [h.img_index for h in index.search(
        torch.tensor([1., 0.]), topk=None)] == [0, 1, 2]
    assert [h.img_index for h in index.search(
        np.array([1, 0]), topk=None, det_thresh=0, img_indices=[1, 2])
            ] == [1, 2]
    assert all(h.img_path != '/g/a.jpg' for h in index.search(
        np.array([1, 0]), det_thresh=0, exclude_imgs=['/g/a.jpg']))
    # (Q, D) queries: one list per query
    both = index.search(np.eye(2, dtype=np.float32), topk=1, det_thresh=0)
    assert [[h.img_index for h in hits] for hits in both] == [[0], [0]]
    assert both[1][0].box == (4., 5., 6., 7.)
    assert index.detections_of(0)['scores'].tolist() == pytest.approx(
        [0.875, 0.375])


def test_bad_arrays_are_refused():
    with pytest.raises(GalleryIndexError, match='scores has 1 rows'):
        GalleryIndex(['a'], [0, 0], np.zeros((2, 4)), [0.5], np.zeros((2, 3)))
    with pytest.raises(GalleryIndexError, match='must index img_paths'):
        GalleryIndex(['a'], [1], np.zeros((1, 4)), [0.5], np.zeros((1, 3)))
    with pytest.raises(ValueError, match='dim 2'):
        make_index().search(np.zeros(3))


def test_check_model():
    index = make_index('abc')
    index.check_model('abc')
    with pytest.raises(GalleryIndexError,
                       match='another model.*config cfg.py'):
        index.check_model('xyz', 'config other.py')


def test_save_load_round_trip(tmp_path):
    index = make_index()
    path = str(tmp_path / 'index.npz')
    index.save(path)
    loaded = GalleryIndex.load(path)
    assert loaded.img_paths == index.img_paths
    assert (loaded.model_id, loaded.meta) == (index.model_id, index.meta)
    for name in ('det_img', 'boxes', 'scores', 'feats'):
        np.testing.assert_array_equal(getattr(loaded, name),
                                      getattr(index, name))
    with pytest.raises(FileNotFoundError, match='not found'):
        GalleryIndex.load(str(tmp_path / 'none.npz'))
    with pytest.raises(FileNotFoundError, match='folder'):
        index.save(str(tmp_path / 'no' / 'dir' / 'index.npz'))


def test_file_of_format_1_loads(tmp_path):
    """The file layout (arrays and a JSON ``meta``, no pickled class path)
    as written while the class lived in ``mmps.apis.gallery_index``."""
    path = str(tmp_path / 'old.npz')
    np.savez(
        path,
        img_paths=np.asarray(['/g/a.jpg', '/g/b.jpg'], dtype=np.str_),
        det_img=np.array([0, 1, 1], np.int64),
        boxes=np.ones((3, 4), np.float32),
        scores=np.array([0.9, 0.8, 0.1], np.float32),
        feats=np.eye(3, dtype=np.float32),
        meta=np.asarray(
            json.dumps(dict(config='c.py', checkpoint=None, format=1,
                            model_id='m1'))))
    assert INDEX_FORMAT == 1
    index = GalleryIndex.load(path)
    assert (index.model_id, index.meta) == (
        'm1', dict(config='c.py', checkpoint=None))
    assert index.img_paths == ['/g/a.jpg', '/g/b.jpg']
    assert index.search(np.array([0, 1, 0]), topk=1)[0].img_index == 1
    # another layout version or other arrays are refused
    with np.load(path) as data:
        arrays = dict(data.items())
    arrays['meta'] = np.asarray(json.dumps(dict(format=2)))
    np.savez(path, **arrays)
    with pytest.raises(GalleryIndexError, match='format 2.*rebuild'):
        GalleryIndex.load(path)
    np.savez(str(tmp_path / 'junk.npz'), a=np.zeros(2))
    with pytest.raises(GalleryIndexError, match='not a gallery index'):
        GalleryIndex.load(str(tmp_path / 'junk.npz'))


def test_imports_alone():
    """``mmps.structures`` imports in a fresh interpreter without pulling
    in the layers above it."""
    code = ('import sys, mmps.structures; '
            'print(sorted(m for m in sys.modules '
            "if m.startswith(('mmps.apis', 'mmps.engine'))))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == '[]'

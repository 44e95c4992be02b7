# Copyright (c) OpenMMLab. All rights reserved.
"""PersonSearcher and GalleryIndex on a tiny synthetic PRW root, with the
shrunk, randomly initialised model of ``configs/dicl_synthetic_prw.py``
(detections of any score: ``det_thresh=0``)."""
import argparse
import glob
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from mmps.apis import (GalleryIndex, GalleryIndexError, PersonSearcher,
                       list_gallery_images)
from mmps.engine import local_checkpoints_trusted
from .utils import make_tiny_prw, read_queries, tiny_search_config


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_tiny_prw(str(tmp_path_factory.mktemp('prw')))


@pytest.fixture(scope='module')
def cfg(root):
    return tiny_search_config(root)


@pytest.fixture(scope='module')
def searcher(cfg):
    torch.manual_seed(0)
    return PersonSearcher(cfg, det_thresh=0.0)


@pytest.fixture(scope='module')
def gallery(root):
    return sorted(glob.glob(osp.join(root, 'frames', '*.jpg')))[:4]


@pytest.fixture(scope='module')
def index(searcher, gallery):
    return searcher.build_index(gallery, batch_size=2, progress=False)


def test_embed_query(searcher, root):
    _, img, box = read_queries(root)[0]
    feat = searcher.embed_query(img, box)
    assert feat.shape == (searcher.model.roi_head.embed_dim, )
    # the reference's (p + g) / 2: norm cos(angle(p, g) / 2) <= 1
    assert 0.5 < float(feat.norm()) <= 1.0 + 1e-6
    # an array (BGR, as cv2 reads it) gives the same feature as the file
    from_array = searcher.embed_query(mmcv.imread(img), np.array(box))
    torch.testing.assert_close(from_array, feat)


def test_build_index(index, gallery, searcher):
    assert index.img_paths == [osp.abspath(p) for p in gallery]
    assert len(index) > 0 and index.feats.shape == (len(index), 256)
    assert set(index.det_img.tolist()) <= set(range(len(gallery)))
    norms = np.linalg.norm(index.feats, axis=1)
    assert ((norms > 0.5) & (norms <= 1 + 1e-6)).all()
    assert index.model_id == searcher.model_id
    # batches of one give the same detections
    again = searcher.build_index(gallery[:2], progress=False)
    n = len(again)
    np.testing.assert_allclose(again.boxes, index.boxes[:n], atol=1e-3)
    np.testing.assert_allclose(again.feats, index.feats[:n], atol=1e-4)


def test_index_save_load_round_trip(index, searcher, tmp_path):
    path = str(tmp_path / 'index.npz')
    index.save(path)
    loaded = searcher.load_index(path)
    assert loaded.img_paths == index.img_paths
    assert loaded.model_id == index.model_id
    assert loaded.meta == index.meta
    for name in ('det_img', 'boxes', 'scores', 'feats'):
        np.testing.assert_array_equal(getattr(loaded, name),
                                      getattr(index, name))


def test_search_ranks_by_similarity(index, searcher, root):
    _, img, box = read_queries(root)[0]
    feat = searcher.embed_query(img, box)
    hits = searcher.search(index, feat, topk=None)
    assert len(hits) == len(index)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    sims = np.array([h.similarity for h in hits])
    assert (np.diff(sims) <= 0).all()
    np.testing.assert_allclose(
        np.sort(index.feats @ feat.numpy())[::-1], sims, rtol=1e-5)
    top3 = searcher.search(index, feat, topk=3)
    assert [h.to_dict() for h in top3] == [h.to_dict() for h in hits[:3]]
    # the detection threshold
    cut = float(np.median(index.scores))
    kept = searcher.search(index, feat, topk=None, det_thresh=cut)
    assert len(kept) == int((index.scores >= cut).sum())
    assert all(h.score >= cut for h in kept)
    # several queries at once
    both = searcher.search(index, torch.stack([feat, feat]), topk=3)
    assert len(both) == 2
    assert [(h.img_index, h.box) for h in both[1]] == \
        [(h.img_index, h.box) for h in top3]
    np.testing.assert_allclose([h.similarity for h in both[1]],
                               sims[:3], rtol=1e-5)


def test_query_of_a_detection_ranks_itself_first(index, searcher):
    """A query on a gallery image with a detection's box gets that
    detection's feature back (up to the box regression, near zero for a
    fresh model) and ranks it first."""
    for det in (int(np.argmax(index.scores)), len(index) - 1):
        img = index.img_paths[index.det_img[det]]
        feat = searcher.embed_query(img, index.boxes[det])
        top = searcher.search(index, feat, topk=1)[0]
        assert top.img_index == index.det_img[det]
        np.testing.assert_allclose(top.box, index.boxes[det])
        # its own feature: the similarity is |f|^2 (the reference's
        # un-normalised fused features)
        assert top.similarity == pytest.approx(float(feat @ feat), rel=1e-3)
        # leaving its image out (by path, or by a gallery subset) drops it
        others = searcher.search(index, feat, topk=None, exclude_imgs=[img])
        subset = [i for i in range(index.num_images)
                  if i != index.det_img[det]]
        assert [h.to_dict() for h in others] == [
            h.to_dict() for h in index.search(
                feat, topk=None, det_thresh=0, img_indices=subset)
        ]
        assert all(h.img_path != img for h in others)


def test_bad_inputs(searcher, root, gallery):
    _, img, _ = read_queries(root)[0]
    missing = osp.join(root, 'frames', 'nope.jpg')
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        searcher.embed_query(missing, (1, 1, 10, 20))
    with pytest.raises(ValueError, match=r'zero or negative size.*200x120'):
        searcher.embed_query(img, (10, 10, 10, 40))
    with pytest.raises(ValueError,
                       match=r'\[150.0, 10.0, 260.0, 60.0\].*200x120'):
        searcher.embed_query(img, (150, 10, 260, 60))
    with pytest.raises(ValueError, match='4 finite numbers'):
        searcher.embed_query(img, (1, 2, 3))
    with pytest.raises(ValueError, match='H x W x 3'):
        searcher.embed_query(np.zeros((5, 5), np.uint8), (0, 0, 2, 2))
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        searcher.build_index(gallery[:1] + [missing], progress=False)
    with pytest.raises(FileNotFoundError, match='no gallery image'):
        list_gallery_images(osp.join(root, 'frames', '*.png'))
    # a box one pixel out (rounding) is clipped, not refused
    feat = searcher.embed_query(img, (150, 10, 200.8, 60))
    assert feat.shape == (256, )


def test_list_gallery_images(root):
    frames = osp.join(root, 'frames')
    by_dir = list_gallery_images(frames)
    assert by_dir == sorted(glob.glob(osp.join(frames, '*.jpg')))
    assert list_gallery_images(osp.join(frames, 'c1*.jpg')) == \
        [p for p in by_dir if osp.basename(p).startswith('c1')]
    assert list_gallery_images(by_dir[:2]) == by_dir[:2]


def test_index_of_another_model_is_refused(cfg, index, searcher, tmp_path):
    path = str(tmp_path / 'index.npz')
    index.save(path)
    torch.manual_seed(1)
    other = PersonSearcher(cfg)  # other weights
    assert other.model_id != searcher.model_id
    with pytest.raises(GalleryIndexError, match='rebuild the index'):
        other.load_index(path)
    with pytest.raises(GalleryIndexError, match='another model'):
        other.search(index, torch.zeros(256))
    with pytest.raises(ValueError, match='dim 256'):
        index.search(np.zeros(8, np.float32))
    np.savez(str(tmp_path / 'junk.npz'), a=np.zeros(2))
    with pytest.raises(GalleryIndexError, match='not a gallery index'):
        GalleryIndex.load(str(tmp_path / 'junk.npz'))


def test_checkpoint_is_trusted_only_while_loading(searcher, cfg, index,
                                                  tmp_path):
    """A training checkpoint (Python objects besides tensors) loads; the
    same weights give the same model id, so the index is accepted."""
    path = str(tmp_path / 'ckpt.pth')
    torch.save(
        dict(state_dict=searcher.model.state_dict(),
             meta=dict(args=argparse.Namespace(x=1))), path)
    loaded = PersonSearcher(cfg, checkpoint=path)
    assert not local_checkpoints_trusted()
    assert loaded.model_id == searcher.model_id
    index.check_model(loaded.model_id)
    with pytest.raises(RuntimeError, match='trust_local_checkpoints'):
        PersonSearcher(cfg, checkpoint=path, trust_checkpoint=False)


def test_call_gives_detections_with_features(searcher, index, gallery, root,
                                             tmp_path):
    """As an mmengine inferencer: a folder, a list or an array of gallery
    images gives every detection with its feature; ``query_boxes`` the
    query features."""
    from mmengine.infer import BaseInferencer
    assert isinstance(searcher, BaseInferencer)
    out = searcher(gallery[:2], batch_size=2, return_vis=True)
    assert len(out['predictions']) == len(out['visualization']) == 2
    first = index.detections_of(0)
    np.testing.assert_allclose(out['predictions'][0]['bboxes'],
                               first['boxes'], atol=1e-3)
    np.testing.assert_allclose(out['predictions'][0]['feats'],
                               first['feats'], atol=1e-4)
    assert out['visualization'][0].shape == (120, 200, 3)
    folder = searcher(osp.join(root, 'frames'), return_datasamples=True)
    assert len(folder['predictions']) == len(list_gallery_images(
        osp.join(root, 'frames'))) and folder['visualization'] is None
    from_array = searcher(mmcv.imread(gallery[0]), return_datasamples=True)
    torch.testing.assert_close(
        from_array['predictions'][0].pred_instances.feats,
        torch.as_tensor(first['feats']), atol=1e-4, rtol=0)
    _, img, box = read_queries(root)[0]
    queries = searcher([img, img], query_boxes=[box, box], batch_size=2)
    assert len(queries['predictions']) == 2
    np.testing.assert_allclose(queries['predictions'][1]['feats'][0],
                               searcher.embed_query(img, box), atol=1e-5)
    with pytest.raises(ValueError, match='one box per image'):
        searcher([img, img], query_boxes=[box])
    searcher(gallery[:1], img_out_dir=str(tmp_path))
    assert osp.isfile(tmp_path / 'vis' / osp.basename(gallery[0]))


def test_nothing_is_downloaded(cfg):
    """Only local files: no model-zoo name, no checkpoint URL."""
    with pytest.raises(FileNotFoundError, match='config file not found'):
        PersonSearcher('dicl_prw')
    with pytest.raises(FileNotFoundError, match='downloads nothing'):
        PersonSearcher(cfg, checkpoint='https://example.com/dicl.pth')


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CPU-only check')
def test_cuda_only_roi_layer_is_refused_on_cpu(cfg):
    with pytest.raises(RuntimeError, match='CUDA only.*RoIAlign'):
        PersonSearcher(
            cfg,
            cfg_options={
                'model.roi_head.bbox_roi_extractor.roi_layer':
                dict(type='DeformRoIPoolPack', output_size=(14, 6),
                     output_channels=64, _delete_=True)
            })

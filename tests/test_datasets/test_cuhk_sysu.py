# Copyright (c) OpenMMLab. All rights reserved.
"""CUHKSYSUDataset reads the native files exactly as the generator wrote them."""
import os
import os.path as osp
from unittest import mock

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from mmps.datasets import AnnotationError, CUHKSYSUDataset
from .utils import copy_root, entry_boxes, entry_pids


def test_train_split_equals_truth(cuhk_truth):
    ds = CUHKSYSUDataset(data_root=cuhk_truth.root, split='train')
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [d['img_name'] for d in infos] == cuhk_truth.train_images
    next_id = 0
    for d in infos:
        t = cuhk_truth.images[d['img_name']]
        assert t['split'] == 'train'
        np.testing.assert_array_equal(entry_boxes(d), t['boxes'])
        np.testing.assert_array_equal(entry_pids(d), t['pids'])
        ids = [i['instance_id'] for i in d['instances']]
        assert ids == list(range(next_id, next_id + len(ids)))
        next_id += len(ids)
        assert (d['height'], d['width']) == (t['height'], t['width'])
        assert osp.isfile(d['img_path']) and not d['is_query']
        assert all(i['bbox_label'] == 0 for i in d['instances'])
    assert ds.num_instances == next_id == sum(
        len(cuhk_truth.images[n]['pids']) for n in cuhk_truth.train_images)
    pids = ds.get_person_ids()
    assert len(pids) == ds.num_instances
    np.testing.assert_array_equal(
        pids, np.concatenate([cuhk_truth.images[n]['pids']
                              for n in cuhk_truth.train_images]))
    assert (pids >= 1).any() and (pids == -1).any()


@pytest.mark.parametrize('size', ['each', None])
def test_test_split_equals_truth(cuhk_truth, size):
    sizes = sorted(cuhk_truth.galleries) if size == 'each' else [None]
    assert sizes, 'the generator wrote no TestG file'
    for s in sizes:
        ds = CUHKSYSUDataset(data_root=cuhk_truth.root, split='test',
                             gallery_size=s)
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        gallery = infos[:ds.num_gallery]
        queries = infos[ds.num_gallery:]
        assert [d['img_name'] for d in gallery] == cuhk_truth.test_images
        assert not any(d['is_query'] for d in gallery)
        for d in gallery:
            t = cuhk_truth.images[d['img_name']]
            np.testing.assert_array_equal(entry_boxes(d), t['boxes'])
            np.testing.assert_array_equal(entry_pids(d), t['pids'])
            assert all(i['instance_id'] == -1 for i in d['instances'])
        assert len(queries) == ds.num_queries == len(cuhk_truth.queries)
        for k, (d, t) in enumerate(zip(queries, cuhk_truth.queries)):
            assert d['is_query'] and d['query_id'] == k
            assert d['img_name'] == t['img']
            np.testing.assert_array_equal(entry_boxes(d)[0], t['box'])
            assert entry_pids(d)[0] == t['pid']
            assert gallery[d['query_img_index']]['img_name'] == t['img']
            if s is None:
                assert d['gallery_img_ids'] is None
            else:
                names = [gallery[g]['img_name'] for g in d['gallery_img_ids']]
                assert names == cuhk_truth.galleries[s][k]
                assert len(names) == min(s, len(gallery) - 1)
                assert t['img'] not in names


def test_gallery_size_must_be_official():
    with pytest.raises(ValueError, match='gallery_size'):
        CUHKSYSUDataset(data_root='x', split='test', gallery_size=77)
    with pytest.raises(ValueError, match='split'):
        CUHKSYSUDataset(data_root='x', split='val')


def test_missing_root_and_files(cuhk_truth, tmp_path):
    with pytest.raises(AnnotationError, match='dataset root not found'):
        CUHKSYSUDataset(data_root=str(tmp_path / 'nope'))
    root = copy_root(cuhk_truth, tmp_path / 'r')
    with pytest.raises(AnnotationError, match=r'TestG4000\.mat: file not found'):
        CUHKSYSUDataset(data_root=root, split='test', gallery_size=4000)
    os.remove(osp.join(root, 'annotation', 'pool.mat'))
    with pytest.raises(AnnotationError, match=r'pool\.mat: file not found'):
        CUHKSYSUDataset(data_root=root)


def _rewrite_images(root, edit):
    path = osp.join(root, 'annotation', 'Images.mat')
    mat = loadmat(path)
    savemat(path, edit(mat))
    return path


def test_malformed_images_mat(cuhk_truth, tmp_path):
    root = copy_root(cuhk_truth, tmp_path / 'r1')
    path = _rewrite_images(root, lambda m: {'Imgs': m['Img']})
    with pytest.raises(AnnotationError) as e:
        CUHKSYSUDataset(data_root=root)
    assert path in str(e.value) and "missing variable 'Img'" in str(e.value)

    def drop_box(m):
        img = m['Img']
        out = np.empty(img.shape, dtype=[('imname', 'O'), ('nAppear', 'O')])
        out['imname'], out['nAppear'] = img['imname'], img['nAppear']
        return {'Img': out}

    root = copy_root(cuhk_truth, tmp_path / 'r2')
    _rewrite_images(root, drop_box)
    with pytest.raises(AnnotationError, match=r"Img: missing field\(s\) \['box'\]"):
        CUHKSYSUDataset(data_root=root)

    def bad_box(m):
        m['Img'][0, 2]['box'][0, 1]['idlocate'] = np.array([[1.0, 2.0, 3.0]])
        return {'Img': m['Img']}

    root = copy_root(cuhk_truth, tmp_path / 'r3')
    _rewrite_images(root, bad_box)
    with pytest.raises(AnnotationError,
                       match=r'Img\(3\)\.box\(2\)\.idlocate: expected 4 numbers'):
        CUHKSYSUDataset(data_root=root)


def test_missing_image_file(cuhk_truth, tmp_path):
    root = copy_root(cuhk_truth, tmp_path / 'r')
    name = cuhk_truth.train_images[1]
    os.remove(osp.join(root, 'Image', 'SSM', name))
    with pytest.raises(AnnotationError,
                       match=f'1 image file\\(s\\) not found, e.g. .*{name}'):
        CUHKSYSUDataset(data_root=root)
    # annotation-only use (benchmarks) does not need the pixels
    ds = CUHKSYSUDataset(data_root=root, check_images=False)
    assert len(ds) == len(cuhk_truth.train_images)


def test_non_positive_boxes_are_skipped_and_counted(cuhk_truth, tmp_path):
    root = copy_root(cuhk_truth, tmp_path / 'r')
    first = cuhk_truth.train_images[0]

    def shrink(m):
        for img in m['Img'][0]:
            if str(img['imname'][0]) == first:
                img['box'][0, 0]['idlocate'] = np.array([[5., 5., 0., 20.]])
                img['box'][0, -1]['idlocate'] = np.array([[5., 5., 10., -3.]])
        return {'Img': m['Img']}

    _rewrite_images(root, shrink)
    with mock.patch('mmps.datasets.base_ps_dataset.print_log') as log:
        ds = CUHKSYSUDataset(data_root=root)
    assert 'skipped 2 box(es) of non-positive size' in log.call_args[0][0]
    n = len(cuhk_truth.images[first]['pids'])
    assert len(ds.get_data_info(0)['instances']) == n - 2
    # instance ids stay dense over the kept boxes
    assert ds.num_instances == sum(
        len(cuhk_truth.images[i]['pids'])
        for i in cuhk_truth.train_images) - 2


def test_malformed_protocol_file(cuhk_truth, tmp_path):
    size = sorted(cuhk_truth.galleries)[0]
    root = copy_root(cuhk_truth, tmp_path / 'r')
    path = osp.join(root, 'annotation', 'test', 'train_test',
                    f'TestG{size}.mat')
    mat = loadmat(path)
    var = mat[f'TestG{size}']
    var[0, 1]['Gallery'][0, 2]['imname'] = np.array([[3.0]])
    savemat(path, {f'TestG{size}': var})
    with pytest.raises(AnnotationError) as e:
        CUHKSYSUDataset(data_root=root, split='test', gallery_size=size)
    assert f'{path}: TestG{size}(2).Gallery(3).imname: expected a string' \
        in str(e.value)

    var[0, 1]['Gallery'][0, 2]['imname'] = np.array(['s99999.jpg'])
    savemat(path, {f'TestG{size}': var})
    with pytest.raises(AnnotationError, match=r"TestG\d+\(2\)\.Gallery\(3\): "
                       r"image 's99999\.jpg' is not in .*Images\.mat"):
        CUHKSYSUDataset(data_root=root, split='test', gallery_size=size)

    # a distractor (no target box) naming an unknown image
    var[0, 1]['Gallery'][0, 2]['imname'] = np.array(
        [cuhk_truth.galleries[size][1][2]])
    assert var[0, 1]['Gallery'][0, -1]['idlocate'].size == 0
    var[0, 1]['Gallery'][0, -1]['imname'] = np.array(['s99999.jpg'])
    savemat(path, {f'TestG{size}': var})
    with pytest.raises(AnnotationError, match='gallery of query 1 lists '
                       "images that are not test images: \\['s99999.jpg'\\]"):
        CUHKSYSUDataset(data_root=root, split='test', gallery_size=size)

# Copyright (c) OpenMMLab. All rights reserved.
"""Bad inputs of the person search datasets: each raises an error naming what
and where, or is skipped / clipped and counted (see
:class:`mmps.datasets.BasePersonSearchDataset`)."""
import logging
import os
import os.path as osp
from unittest import mock

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from mmps.datasets import (AnnotationError, CUHKSYSUDataset, ImageReadError,
                           PRWDataset)
from mmps.evaluation.functional import PersonSearchProtocol
from .utils import copy_root

LOAD = [dict(type='LoadImageFromFile')]


def _frame_mat(root, name):
    return osp.join(root, 'annotations', name + '.mat')


def _edit_frame(root, name, edit):
    """Rewrite the N x 5 [pid, x, y, w, h] boxes of a PRW frame."""
    path = _frame_mat(root, name)
    mat = loadmat(path)
    key = 'box_new' if 'box_new' in mat else 'anno_file'
    savemat(path, {key: edit(mat[key].astype(np.float64))})
    return path


def _edit_query(root, k, box):
    """Set the x, y, w, h of query ``k`` of query_info.txt."""
    path = osp.join(root, 'query_info.txt')
    with open(path, newline='') as f:
        lines = f.read().split('\r\n')
    parts = lines[k].split()
    parts[1:5] = [str(v) for v in box]
    lines[k] = ' '.join(parts)
    with open(path, 'w', newline='') as f:
        f.write('\r\n'.join(lines))
    return path


def _logs(log):
    return [(c.kwargs.get('level'), c.args[0]) for c in log.call_args_list]


# -- images -------------------------------------------------------------------
def test_missing_images_are_all_reported_at_start_up(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    gone = prw_truth.train_images[:7]
    for name in gone:
        os.remove(osp.join(root, 'frames', name))
    with pytest.raises(AnnotationError) as e:
        PRWDataset(data_root=root, split='train')
    msg = str(e.value)
    assert '7 image file(s) not found' in msg and '(train)' in msg
    assert all(n in msg for n in gone[:5])  # the first five are named
    assert gone[5] not in msg and gone[6] not in msg
    assert 'check_images=False' in msg


@pytest.mark.parametrize('content', [b'', b'not an image at all'])
def test_unreadable_image_header_at_start_up(prw_truth, tmp_path, content):
    root = copy_root(prw_truth, tmp_path / 'r')
    name = prw_truth.test_images[1]
    with open(osp.join(root, 'frames', name), 'wb') as f:
        f.write(content)
    with pytest.raises(AnnotationError,
                       match=f'1 unreadable image file.*{name}'):
        PRWDataset(data_root=root, split='test')


@pytest.mark.parametrize('check_images', [True, False])
def test_truncated_image_fails_when_loaded(prw_truth, tmp_path, check_images):
    root = copy_root(prw_truth, tmp_path / 'r')
    name = prw_truth.train_images[0]
    path = osp.join(root, 'frames', name)
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:  # the header (and so the size) survives
        f.write(data[:len(data) // 3])
    ds = PRWDataset(data_root=root, pipeline=LOAD, check_images=check_images)
    assert ds[1]['img'].shape[:2] == (120, 200)  # the others load
    with pytest.raises(ImageReadError) as e:
        ds[0]
    msg = str(e.value)
    assert msg.startswith(f'{path}: cannot decode the image')
    assert 'entry 0 of PRWDataset train, image 0' in msg
    assert isinstance(e.value.__cause__, AssertionError)  # mmcv's


def test_missing_image_without_start_up_check_fails_when_loaded(
        prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    name = prw_truth.test_images[0]
    os.remove(osp.join(root, 'frames', name))
    ds = PRWDataset(data_root=root,
                    split='test',
                    pipeline=LOAD,
                    check_images=False)
    q = next(i for i in range(ds.num_gallery, len(ds))
             if ds.get_data_info(i)['img_name'] == name)
    for idx, what in ((0, 'image 0'), (q, f'query {q - ds.num_gallery}')):
        with pytest.raises(ImageReadError,
                           match=f'{name}: image file not found .*{what}'):
            ds[idx]


def test_other_pipeline_errors_are_not_rewrapped(prw_truth):

    class Boom:

        def __call__(self, results):
            raise KeyError('not about the image')

    ds = PRWDataset(data_root=prw_truth.root, pipeline=LOAD + [Boom()])
    with pytest.raises(KeyError, match='not about the image'):
        ds[0]


# -- annotation files ---------------------------------------------------------
def test_empty_annotation_files(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    path = _frame_mat(root, prw_truth.train_images[3])
    open(path, 'w').close()
    with pytest.raises(AnnotationError,
                       match=f'{path}: not a readable MATLAB file'):
        PRWDataset(data_root=root)

    root = copy_root(prw_truth, tmp_path / 'r2')
    path = osp.join(root, 'frame_train.mat')
    open(path, 'w').close()
    with pytest.raises(AnnotationError,
                       match=f'{path}: not a readable MATLAB file'):
        PRWDataset(data_root=root)
    savemat(path, {'img_index_train': np.zeros((0, 1), object)})
    with pytest.raises(AnnotationError,
                       match=f'{path}: img_index_train lists no frame'):
        PRWDataset(data_root=root)

    path = osp.join(root, 'query_info.txt')
    with open(path, 'w') as f:
        f.write('\r\n')
    with pytest.raises(AnnotationError, match=f'{path}: no query'):
        PRWDataset(data_root=root, split='test')


def test_empty_cuhk_sysu_pool(cuhk_truth, tmp_path):
    root = copy_root(cuhk_truth, tmp_path / 'r')
    path = osp.join(root, 'annotation', 'pool.mat')
    savemat(path, {'pool': np.zeros((0, 1), object)})
    with pytest.raises(AnnotationError,
                       match=f'{path}: pool lists no test image'):
        CUHKSYSUDataset(data_root=root, split='test')


# -- boxes --------------------------------------------------------------------
def test_boxes_outside_or_empty_are_clipped_or_skipped_and_counted(
        prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    name = prw_truth.train_images[0]
    n = len(prw_truth.images[name]['pids'])
    assert n >= 3
    w, h = prw_truth.images[name]['width'], prw_truth.images[name]['height']

    def edit(boxes):
        boxes[0, 1:] = [w - 10, h - 30, 25, 40]  # partly outside: clipped
        boxes[1, 1:] = [w + 5, 10, 20, 40]  # wholly outside: skipped
        boxes[2, 1:] = [10, 10, 0, 40]  # zero width: skipped
        return boxes

    _edit_frame(root, name, edit)
    with mock.patch('mmps.datasets.base_ps_dataset.print_log') as log:
        ds = PRWDataset(data_root=root)
    assert ds.box_stats == dict(clipped=1,
                                non_positive=1,
                                outside=1,
                                clipped_queries=0)
    info = ds.get_data_info(0)
    assert len(info['instances']) == n - 2
    assert info['instances'][0]['bbox'] == [w - 10, h - 30, w, h]
    assert ds.num_instances == sum(
        len(prw_truth.images[i]['pids']) for i in prw_truth.train_images) - 2
    # logged once each, with the counts
    assert _logs(log) == [
        (logging.INFO,
         'PRWDataset (train): clipped 1 box(es) and 0 query box(es) to '
         'their image'),
        (logging.WARNING,
         'PRWDataset (train): skipped 1 box(es) of non-positive size and 1 '
         'box(es) wholly outside their image'),
    ]


def test_non_finite_box_names_the_file_and_row(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')

    def edit(boxes):
        boxes[1, 3] = np.inf
        return boxes

    path = _edit_frame(root, prw_truth.train_images[2], edit)
    with pytest.raises(AnnotationError,
                       match=rf'{path}: \w+ row\(s\) \[1\] hold non-finite'):
        PRWDataset(data_root=root)


def test_images_without_any_person(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    # a training frame, and a test frame that is also a query's image
    train, test = prw_truth.train_images[1], prw_truth.queries[0]['img']
    for name in (train, test):
        _edit_frame(root, name, lambda b: b[:0])
    ds = PRWDataset(data_root=root)
    assert len(ds) == len(prw_truth.train_images)  # kept, as mmdet does
    assert ds.get_data_info(1)['instances'] == []
    ds = PRWDataset(data_root=root, filter_cfg=dict(filter_empty_gt=True))
    assert len(ds) == len(prw_truth.train_images) - 1
    assert train not in [d['img_name'] for d in ds.data_list]
    # a test frame without a person stays a gallery image (never filtered)
    ds = PRWDataset(data_root=root,
                    split='test',
                    filter_cfg=dict(filter_empty_gt=True))
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    names = [d['img_name'] for d in infos[:ds.num_gallery]]
    assert names == prw_truth.test_images
    assert infos[names.index(test)]['instances'] == []
    protocol = PersonSearchProtocol.from_data_infos(infos)
    assert protocol.num_images == len(prw_truth.test_images)


# -- queries ------------------------------------------------------------------
def test_query_box_partly_outside_is_clipped_and_counted(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    q = prw_truth.queries[0]
    w, h = (prw_truth.images[q['img']][k] for k in ('width', 'height'))
    _edit_query(root, 0, [-4, h - 20, 30, 40])
    with mock.patch('mmps.datasets.base_ps_dataset.print_log') as log:
        ds = PRWDataset(data_root=root, split='test')
    assert ds.box_stats['clipped_queries'] == 1
    query = ds.get_data_info(ds.num_gallery)
    assert query['instances'][0]['bbox'] == [0, h - 20, 26, h]
    assert 'clipped 0 box(es) and 1 query box(es)' in _logs(log)[0][1]


@pytest.mark.parametrize('box,what', [
    ([500, 10, 20, 40], r'lies wholly outside its image \(200 x 120\)'),
    ([10, 10, 20, 0], 'has a non-positive size'),
])
def test_query_box_outside_or_empty_names_the_query(prw_truth, tmp_path, box,
                                                    what):
    root = copy_root(prw_truth, tmp_path / 'r')
    path = _edit_query(root, 1, box)
    img = prw_truth.queries[1]['img']
    with pytest.raises(AnnotationError) as e:
        PRWDataset(data_root=root, split='test')
    assert str(e.value).startswith(f'{path}:2: query 1 (image {img}, box ')
    assert e.match(what)


def test_query_box_not_finite(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    path = _edit_query(root, 2, ['nan', 10, 20, 40])
    with pytest.raises(AnnotationError, match=f'{path}:3: non-finite box in'):
        PRWDataset(data_root=root, split='test')


def test_cuhk_sysu_query_outside_names_the_protocol_entry(
        cuhk_truth, tmp_path):
    size = sorted(cuhk_truth.galleries)[0]
    root = copy_root(cuhk_truth, tmp_path / 'r')
    path = osp.join(root, 'annotation', 'test', 'train_test',
                    f'TestG{size}.mat')
    mat = loadmat(path)
    var = mat[f'TestG{size}']
    var[0, 1]['Query'][0, 0]['idlocate'] = np.array([[900., 5., 20., 40.]])
    savemat(path, {f'TestG{size}': var})
    with pytest.raises(AnnotationError) as e:
        CUHKSYSUDataset(data_root=root, split='test', gallery_size=size)
    assert str(e.value).startswith(f'{path}: TestG{size}(2).Query: query 1')
    assert 'lies wholly outside its image' in str(e.value)

# Copyright (c) OpenMMLab. All rights reserved.
"""Per-box identities stay aligned with the boxes through mmdet transforms."""
import copy

import numpy as np
import pytest
import torch

from mmps.datasets import PRWDataset
from mmps.registry import TRANSFORMS

TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPersonSearchAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(300, 180), (400, 240)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=1.0),
    dict(type='PackPersonSearchInputs'),
]


def test_ids_follow_resize_and_flip(prw_truth):
    ds = PRWDataset(data_root=prw_truth.root, split='train',
                    pipeline=TRAIN_PIPELINE)
    for idx in range(3):
        info = ds.get_data_info(idx)
        out = ds[idx]
        sample = out['data_samples']
        gt = sample.gt_instances
        t = prw_truth.images[info['img_name']]
        first = info['instances'][0]['instance_id']
        assert gt.instances_ids.dtype == torch.int64
        np.testing.assert_array_equal(
            gt.instances_ids.numpy(), first + np.arange(len(t['pids'])))
        np.testing.assert_array_equal(gt.person_ids.numpy(), t['pids'])
        # boxes: the truth, scaled then flipped horizontally
        sx, sy = sample.metainfo['scale_factor']
        w = sample.metainfo['img_shape'][1]
        expected = t['boxes'] * [sx, sy, sx, sy]
        expected[:, [0, 2]] = w - expected[:, [2, 0]]
        np.testing.assert_allclose(gt.bboxes.numpy(), expected, atol=1e-3)
        assert sample.metainfo['flip'] and not sample.metainfo['is_query']
        assert out['inputs'].shape[1:] == tuple(sample.metainfo['img_shape'])


def test_query_entry_is_packed_with_its_box_and_gallery(cuhk_truth):
    size = sorted(cuhk_truth.galleries)[0]
    from mmps.datasets import CUHKSYSUDataset
    ds = CUHKSYSUDataset(
        data_root=cuhk_truth.root, split='test', gallery_size=size,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadPersonSearchAnnotations', with_bbox=True),
            dict(type='Resize', scale=(300, 180), keep_ratio=True),
            dict(type='PackPersonSearchInputs'),
        ])
    q = ds[ds.num_gallery]['data_samples']
    t = cuhk_truth.queries[0]
    assert q.metainfo['is_query'] and q.metainfo['query_id'] == 0
    assert len(q.metainfo['gallery_img_ids']) == len(
        cuhk_truth.galleries[size][0])
    # one frame for every box: the query box follows the image's resize
    sw, sh = q.metainfo['scale_factor']
    np.testing.assert_allclose(q.gt_instances.bboxes.numpy()[0],
                               np.array(t['box']) * [sw, sh, sw, sh],
                               rtol=1e-6)
    assert q.gt_instances.person_ids.tolist() == [t['pid']]


def test_annotations_loaded_after_a_geometric_transform_fail_loudly(
        cuhk_truth):
    from mmps.datasets import CUHKSYSUDataset
    size = sorted(cuhk_truth.galleries)[0]
    for step in (dict(type='Resize', scale=(300, 180), keep_ratio=True),
                 dict(type='RandomFlip', prob=1.0)):
        ds = CUHKSYSUDataset(
            data_root=cuhk_truth.root, split='test', gallery_size=size,
            pipeline=[
                dict(type='LoadImageFromFile'), step,
                dict(type='LoadPersonSearchAnnotations', with_bbox=True),
                dict(type='PackPersonSearchInputs'),
            ])
        with pytest.raises(ValueError, match='before Resize / RandomFlip'):
            ds[ds.num_gallery]


def test_misaligned_ids_fail_loudly():
    pack = TRANSFORMS.build(dict(type='PackPersonSearchInputs'))
    results = dict(
        img=np.zeros((8, 8, 3), np.uint8),
        img_path='x.jpg',
        gt_bboxes=np.zeros((2, 4), np.float32),
        gt_bboxes_labels=np.zeros(2, np.int64),
        gt_ignore_flags=np.zeros(2, bool),
        gt_instances_ids=np.arange(3),
        gt_person_ids=np.arange(2))
    with pytest.raises(ValueError, match='gt_instances_ids has 3 entries but '
                       'gt_bboxes has 2'):
        pack(copy.deepcopy(results))
    results['gt_instances_ids'] = np.arange(2)
    gt = pack(results)['data_samples'].gt_instances
    assert gt.instances_ids.tolist() == [0, 1]


def test_ignored_boxes_split_ids_the_same_way():
    pack = TRANSFORMS.build(dict(type='PackPersonSearchInputs'))
    out = pack(
        dict(
            img=np.zeros((8, 8, 3), np.uint8),
            gt_bboxes=np.arange(12, dtype=np.float32).reshape(3, 4),
            gt_bboxes_labels=np.zeros(3, np.int64),
            gt_ignore_flags=np.array([False, True, False]),
            gt_instances_ids=np.array([7, 8, 9]),
            gt_person_ids=np.array([1, -1, 2])))['data_samples']
    assert out.gt_instances.instances_ids.tolist() == [7, 9]
    assert out.gt_instances.person_ids.tolist() == [1, 2]
    assert out.ignored_instances.instances_ids.tolist() == [8]

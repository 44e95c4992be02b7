# Copyright (c) OpenMMLab. All rights reserved.
"""Instance views (SIC) and box occlusion (OIC) transforms, their packing and
preprocessing."""
import copy

import cv2
import numpy as np
import pytest
import torch

from mmps.datasets.transforms import (BoxOcclusion, InstanceViews,
                                      PackPersonSearchInputs)
from mmps.registry import MODELS


def _image(h=300, w=200, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def test_instance_views_exact_crop_and_shapes():
    img = _image()
    boxes = np.array([[10, 20, 106, 244], [50, 60, 98, 172]], np.float32)
    out = InstanceViews()(dict(img=img.copy(), gt_bboxes=boxes))
    crops = out['gt_crops']
    assert crops.shape == (2, 3, 224, 96) and crops.dtype == np.uint8
    # a 96 x 224 box is cut without resampling
    np.testing.assert_array_equal(crops[0].transpose(1, 2, 0),
                                  img[20:244, 10:106])
    # a 48 x 112 box is a 2x bilinear upsampling of its pixels
    patch = img[60:172, 50:98].astype(np.float64)
    assert abs(crops[1].transpose(1, 2, 0).mean() - patch.mean()) < 2.0
    empty = InstanceViews(crop_size=(32, 16))(
        dict(img=img, gt_bboxes=np.zeros((0, 4), np.float32)))
    assert empty['gt_crops'].shape == (0, 3, 32, 16)


def test_instance_views_boxes_at_and_beyond_the_border():
    img = _image(60, 40)
    boxes = np.array([[-5., -3., 10., 30.], [35., 50., 45., 70.],
                      [39.6, 59.7, 39.9, 59.9]], np.float32)
    crops = InstanceViews(crop_size=(28, 12))(
        dict(img=img, gt_bboxes=boxes))['gt_crops']
    assert crops.shape == (3, 3, 28, 12)
    # the inside part of the first box fills its view (30 px -> 28 px tall:
    # area interpolation when shrinking)
    np.testing.assert_array_equal(
        crops[0].transpose(1, 2, 0),
        cv2.resize(img[0:30, 0:10], (12, 28), interpolation=cv2.INTER_AREA))
    # a sub-pixel box at the corner gives the corner pixel
    assert (crops[2] == img[59, 39][:, None, None]).all()


def test_instance_view_augmentation_is_off_by_default_and_random_when_on():
    img = _image()
    boxes = np.array([[10, 20, 106, 244]], np.float32)
    plain = InstanceViews()(dict(img=img, gt_bboxes=boxes))['gt_crops']
    again = InstanceViews()(dict(img=img, gt_bboxes=boxes))['gt_crops']
    np.testing.assert_array_equal(plain, again)
    aug = InstanceViews(scale_jitter=0.2, shift_jitter=0.1, color_jitter=0.2)
    np.random.seed(0)
    a = aug(dict(img=img, gt_bboxes=boxes))['gt_crops']
    b = aug(dict(img=img, gt_bboxes=boxes))['gt_crops']
    assert a.shape == plain.shape and not np.array_equal(a, b)
    assert not np.array_equal(a, plain)


def test_box_occlusion_grid_mode_masks_two_cells_with_the_image_mean():
    img = _image()
    mean = img.reshape(-1, 3).mean(0).astype(np.uint8)
    boxes = np.array([[0, 0, 60, 140], [100, 100, 160, 240]], np.float32)
    np.random.seed(1)
    out = BoxOcclusion(prob=1.0, mode='grid')(
        dict(img=img.copy(), gt_bboxes=boxes))
    assert out['gt_occluded'].tolist() == [True, True]
    changed = (out['img'] != img).any(-1)
    masked = (out['img'] == mean).all(-1) & changed
    # outside the boxes nothing changes
    inside = np.zeros(changed.shape, bool)
    inside[0:140, 0:60] = inside[100:240, 100:160] = True
    assert not changed[~inside].any()
    # each box: exactly 2 of its 14 x 6 cells (10 x 10 px here) are filled
    for x1, y1 in ((0, 0), (100, 100)):
        cells = masked[y1:y1 + 140, x1:x1 + 60].reshape(14, 10, 6, 10)
        full = cells.all(axis=(1, 3))
        assert full.sum() == 2
        assert masked[y1:y1 + 140, x1:x1 + 60].sum() == 200


def _reference_cells(box, seed, prob=1.0, num=2):
    """The authors' masking, written out: int(box + 1), int(h / 14) x
    int(w / 6) cells at the box's top-left, columns then rows drawn with
    replacement after the coin."""
    rng = np.random.RandomState(seed)
    x1, y1, x2, y2 = (int(v) for v in np.asarray(box) + 1)
    if rng.rand() >= prob:
        return x1, y1, x2, y2, []
    h, w = int((y2 - y1) / 14), int((x2 - x1) / 6)
    cx = rng.randint(6, size=num) * w
    cy = rng.randint(14, size=num) * h
    return x1, y1, x2, y2, [(y1 + y, y1 + y + h, x1 + x, x1 + x + w)
                            for x, y in zip(cx, cy)]


@pytest.mark.parametrize('seed', [0, 1, 2, 7])
def test_box_occlusion_reference_cells_exact(seed):
    img = _image()
    mean = img.reshape(-1, 3).mean(0).astype(np.uint8)
    # 93 x 47 px after int(box + 1): 6 x 7 px cells, a 9 x 5 px remainder
    box = np.array([[3.5, 7.2, 50.9, 100.3]], np.float32)
    np.random.seed(seed)
    out = BoxOcclusion(prob=1.0)(dict(img=img.copy(), gt_bboxes=box))
    x1, y1, x2, y2, cells = _reference_cells(box[0], seed)
    assert (x1, y1, x2, y2) == (4, 8, 51, 101)
    expected = img.copy()
    for ya, yb, xa, xb in cells:
        assert yb - ya == 6 and xb - xa == 7
        assert yb <= y1 + 84 and xb <= x1 + 42  # never the remainder
        expected[ya:yb, xa:xb] = mean
    np.testing.assert_array_equal(out['img'], expected)
    assert out['gt_occluded'].tolist() == [True]


def test_box_occlusion_reference_draws_with_replacement():
    img = _image()
    box = np.array([[0, 0, 59, 139]], np.float32)  # int(box + 1): 10 x 10
    same = [s for s in range(200)
            if len(set(_reference_cells(box[0], s)[4])) == 1]
    assert same, 'no seed drew the same cell twice'
    np.random.seed(same[0])
    out = BoxOcclusion(prob=1.0)(dict(img=img.copy(), gt_bboxes=box))
    assert (out['img'] != img).any(-1).sum() <= 100  # one 10 x 10 cell
    ya, yb, xa, xb = _reference_cells(box[0], same[0])[4][0]
    assert (out['img'][ya:yb, xa:xb] != img[ya:yb, xa:xb]).any()


def test_box_occlusion_reference_tiny_cells_mask_nothing():
    img = _image()
    box = np.array([[10, 10, 15, 30]], np.float32)  # 5 px wide: 0-px cells
    out = BoxOcclusion(prob=1.0)(dict(img=img.copy(), gt_bboxes=box))
    np.testing.assert_array_equal(out['img'], img)
    assert out['gt_occluded'].tolist() == [False]
    with pytest.raises(ValueError, match='mode'):
        BoxOcclusion(mode='random')


def test_box_occlusion_skips_small_boxes_but_not_the_boxes_after_them():
    img = _image()
    boxes = np.array([[0, 0, 3, 100], [50, 50, 110, 190]], np.float32)
    out = BoxOcclusion(prob=1.0)(dict(img=img.copy(), gt_bboxes=boxes))
    assert out['gt_occluded'].tolist() == [False, True]
    assert (out['img'][:, :3] == img[:, :3]).all()
    none = BoxOcclusion(prob=0.0)(dict(img=img.copy(), gt_bboxes=boxes))
    np.testing.assert_array_equal(none['img'], img)


def test_views_are_cut_before_the_masking():
    img = _image()
    boxes = np.array([[10, 20, 106, 244]], np.float32)
    results = dict(img=img.copy(), gt_bboxes=boxes)
    results = InstanceViews()(results)
    results = BoxOcclusion(prob=1.0)(results)
    assert (results['img'] != img).any()
    np.testing.assert_array_equal(results['gt_crops'][0].transpose(1, 2, 0),
                                  img[20:244, 10:106])


def test_packing_and_preprocessing_of_the_views():
    img = _image()
    boxes = np.array([[10, 20, 106, 244], [50, 60, 98, 172],
                      [120, 30, 170, 150]], np.float32)
    results = InstanceViews()(dict(img=img.copy(), gt_bboxes=boxes))
    results = BoxOcclusion(prob=1.0)(results)
    results.update(
        gt_bboxes_labels=np.zeros(3, np.int64),
        gt_ignore_flags=np.array([False, True, False]),
        gt_instances_ids=np.array([4, 5, 6]),
        gt_person_ids=np.array([1, -1, 2]))
    crops = results['gt_crops'].copy()
    packed = PackPersonSearchInputs()(copy.deepcopy(results))
    gt = packed['data_samples'].gt_instances
    assert gt.crops.shape == (2, 3, 224, 96)
    np.testing.assert_array_equal(gt.crops.numpy(), crops[[0, 2]])
    assert gt.instances_ids.tolist() == [4, 6]
    assert gt.occluded.tolist() == [True, True]
    assert packed['data_samples'].ignored_instances.crops.shape[0] == 1

    mean, std = [103.53, 116.28, 123.675], [57.0, 57.0, 58.0]
    pre = MODELS.build(
        dict(type='PersonSearchDataPreprocessor', mean=mean, std=std,
             bgr_to_rgb=True, pad_size_divisor=32))
    data = pre(dict(inputs=[packed['inputs']],
                    data_samples=[packed['data_samples']]), True)
    got = data['data_samples'][0].gt_instances.crops
    expected = (torch.from_numpy(crops[[0, 2]][:, ::-1].copy()).float() -
                torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
                    std).view(1, 3, 1, 1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    # the scene is preprocessed exactly as mmdet does
    det = MODELS.build(
        dict(type='DetDataPreprocessor', mean=mean, std=std, bgr_to_rgb=True,
             pad_size_divisor=32))
    ref = det(dict(inputs=[packed['inputs']],
                   data_samples=[copy.deepcopy(packed['data_samples'])]),
              True)
    torch.testing.assert_close(data['inputs'], ref['inputs'])


def test_pack_rejects_views_that_lost_their_boxes():
    results = dict(
        img=_image(),
        gt_bboxes=np.zeros((2, 4), np.float32),
        gt_bboxes_labels=np.zeros(2, np.int64),
        gt_crops=np.zeros((3, 3, 8, 4), np.uint8))
    with pytest.raises(ValueError, match='gt_crops has 3 entries'):
        PackPersonSearchInputs()(results)

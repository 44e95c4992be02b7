# Copyright (c) OpenMMLab. All rights reserved.
import math

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict

from mmps.models.roi_heads import PersonSearchBBoxHead
from mmps.registry import MODELS

TEST_CFG = ConfigDict(
    score_thr=0.05, nms=dict(type='nms', iou_threshold=0.4), max_per_img=100)


def _head(**kwargs):
    cfg = dict(
        type='PersonSearchBBoxHead',
        in_channels=8,
        conv_out_channels=(4, 6),
        roi_feat_size=(14, 6))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_towers_and_shapes():
    head = _head()
    # two separate towers of conv3x3 -> BN -> ReLU
    for tower in (head.cls_convs, head.reg_convs):
        assert [m.conv.out_channels for m in tower] == [4, 6]
        assert all(m.conv.kernel_size == (3, 3) for m in tower)
        assert all(type(m.norm).__name__ == 'BatchNorm2d' for m in tower)
        assert all(type(m.activate).__name__ == 'ReLU' for m in tower)
    assert head.cls_convs[0].conv is not head.reg_convs[0].conv
    assert head.fc_cls.in_features == 6 and head.fc_cls.out_features == 2
    assert head.fc_reg.in_features == 6 and head.fc_reg.out_features == 4
    head.train()
    cls_score, bbox_pred = head(torch.randn(5, 8, 14, 6))
    assert cls_score.shape == (5, 2) and bbox_pred.shape == (5, 4)
    cls_score, bbox_pred = head(torch.randn(0, 8, 14, 6))
    assert cls_score.shape == (0, 2) and bbox_pred.shape == (0, 4)


def test_forward_is_towers_then_global_average_pool():
    head = _head().eval()
    x = torch.randn(3, 8, 14, 6)
    cls_score, bbox_pred = head(x)
    cls_ref = head.fc_cls(head.cls_convs(x).mean((2, 3)))
    reg_ref = head.fc_reg(head.reg_convs(x).mean((2, 3)))
    assert torch.allclose(cls_score, cls_ref) and torch.allclose(
        bbox_pred, reg_ref)


def test_default_losses_and_l1_weight_10():
    head = _head()
    assert head.loss_bbox.loss_weight == 10.0
    assert head.loss_cls.loss_weight == 1.0
    assert list(head.bbox_coder.stds) == [0.1, 0.1, 0.2, 0.2]
    cls_score = torch.randn(3, 2)
    bbox_pred = torch.randn(3, 4)
    labels = torch.tensor([0, 0, 1])  # two persons, one background
    label_weights = torch.ones(3)
    bbox_targets = torch.randn(3, 4)
    bbox_weights = torch.tensor([[1.] * 4, [1.] * 4, [0.] * 4])
    losses = head.loss(cls_score, bbox_pred, None, labels, label_weights,
                       bbox_targets, bbox_weights)
    l1 = (bbox_pred[:2] - bbox_targets[:2]).abs().sum() / 3  # avg: 3 RoIs
    assert torch.allclose(losses['loss_bbox'], 10 * l1)
    assert torch.allclose(losses['loss_cls'],
                          F.cross_entropy(cls_score, labels))


def _logits(p_fg):
    return [math.log(p_fg), math.log(1 - p_fg)]


def test_predict_keeps_proposal_index_and_input_boxes():
    head = _head().eval()
    rois = torch.tensor([[0, 10., 10., 30., 50.], [0, 12., 10., 32., 50.],
                         [0, 60., 10., 80., 50.], [0, 40., 40., 60., 90.]])
    cls_score = torch.tensor([_logits(p) for p in (0.9, 0.8, 0.7, 0.01)])
    bbox_pred = torch.zeros(4, 4)
    meta = dict(img_shape=(100, 100), scale_factor=(2., 2.))
    res = head.predict_by_feat((rois, ), (cls_score, ), (bbox_pred, ), [meta],
                               rcnn_test_cfg=TEST_CFG,
                               rescale=True)[0]
    # roi 1 is suppressed by roi 0 (NMS 0.4), roi 3 is under score_thr
    assert res.proposal_inds.tolist() == [0, 2]
    assert torch.allclose(res.scores, torch.tensor([0.9, 0.7]))
    assert torch.allclose(res.input_bboxes, rois[[0, 2], 1:])
    assert torch.allclose(res.bboxes, rois[[0, 2], 1:] / 2)
    assert res.labels.tolist() == [0, 0]

    res = head.predict_by_feat((rois, ), (cls_score, ), (bbox_pred, ), [meta],
                               rcnn_test_cfg=TEST_CFG,
                               rescale=False)[0]
    assert torch.allclose(res.bboxes, res.input_bboxes)

    empty = head.predict_by_feat((rois[:0], ), (cls_score[:0], ),
                                 (bbox_pred[:0], ), [meta],
                                 rcnn_test_cfg=TEST_CFG,
                                 rescale=True)[0]
    assert len(empty) == 0 and empty.proposal_inds.shape == (0, )
    assert empty.input_bboxes.shape == (0, 4)


def test_predict_provenance_with_several_classes():
    head = _head(num_classes=2).eval()
    rois = torch.tensor([[0, 10., 10., 30., 50.], [0, 60., 10., 80., 50.]])
    probs = torch.tensor([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1]])
    bbox_pred = torch.randn(2, 8) * 0.5  # different boxes per class
    meta = dict(img_shape=(100, 100), scale_factor=(1., 1.))
    res = head.predict_by_feat((rois, ), (probs.log(), ), (bbox_pred, ),
                               [meta],
                               rcnn_test_cfg=TEST_CFG)[0]
    decoded = head.decode_rois(rois, bbox_pred, meta).view(2, 2, 4)
    assert res.proposal_inds.tolist() == [0, 1, 1, 0]
    assert res.labels.tolist() == [1, 0, 1, 0]
    assert torch.allclose(res.scores, torch.tensor([0.8, 0.7, 0.2, 0.1]))
    assert torch.allclose(res.input_bboxes, decoded[res.proposal_inds,
                                                    res.labels])
    assert torch.allclose(res.bboxes, res.input_bboxes)


def test_is_an_mmdet_bbox_head():
    from mmdet.models.roi_heads.bbox_heads import BBoxHead
    assert issubclass(PersonSearchBBoxHead, BBoxHead)

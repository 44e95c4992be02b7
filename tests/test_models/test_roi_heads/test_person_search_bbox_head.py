# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
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


def test_is_an_mmdet_convfc_bbox_head_with_separate_conv_branches():
    from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
    assert issubclass(PersonSearchBBoxHead, ConvFCBBoxHead)
    head = _head()
    assert (head.num_cls_convs, head.num_reg_convs) == (2, 2)
    assert head.num_shared_convs == head.num_shared_fcs == 0
    assert head.num_cls_fcs == head.num_reg_fcs == 0
    assert _head(with_reg=False).num_reg_convs == 0
    with pytest.raises(ValueError, match='conv_out_channels is empty'):
        _head(conv_out_channels=())


def test_tower_convs_follow_tower_init_cfg():
    head = _head(in_channels=64, conv_out_channels=(64, 64))
    head.init_weights()
    for tower in (head.cls_convs, head.reg_convs):
        for m in tower:
            assert abs(m.conv.weight.std().item() - 0.01) < 2e-3
            assert m.conv.bias is None  # followed by BN
            assert torch.equal(m.bn.weight, torch.ones_like(m.bn.weight))


# The state dict of the head as it was before it became a ConvFCBBoxHead
# (towers as nn.Sequential of ConvModule, Linear predictors), recorded from
# that implementation for in_channels=8, conv_out_channels=(4, 6) and one
# class: checkpoints saved then must load with strict=True.
OLD_LAYOUT = [
    ('fc_cls.weight', (2, 6)),
    ('fc_cls.bias', (2, )),
    ('fc_reg.weight', (4, 6)),
    ('fc_reg.bias', (4, )),
    ('cls_convs.0.conv.weight', (4, 8, 3, 3)),
    ('cls_convs.0.bn.weight', (4, )),
    ('cls_convs.0.bn.bias', (4, )),
    ('cls_convs.0.bn.running_mean', (4, )),
    ('cls_convs.0.bn.running_var', (4, )),
    ('cls_convs.0.bn.num_batches_tracked', ()),
    ('cls_convs.1.conv.weight', (6, 4, 3, 3)),
    ('cls_convs.1.bn.weight', (6, )),
    ('cls_convs.1.bn.bias', (6, )),
    ('cls_convs.1.bn.running_mean', (6, )),
    ('cls_convs.1.bn.running_var', (6, )),
    ('cls_convs.1.bn.num_batches_tracked', ()),
    ('reg_convs.0.conv.weight', (4, 8, 3, 3)),
    ('reg_convs.0.bn.weight', (4, )),
    ('reg_convs.0.bn.bias', (4, )),
    ('reg_convs.0.bn.running_mean', (4, )),
    ('reg_convs.0.bn.running_var', (4, )),
    ('reg_convs.0.bn.num_batches_tracked', ()),
    ('reg_convs.1.conv.weight', (6, 4, 3, 3)),
    ('reg_convs.1.bn.weight', (6, )),
    ('reg_convs.1.bn.bias', (6, )),
    ('reg_convs.1.bn.running_mean', (6, )),
    ('reg_convs.1.bn.running_var', (6, )),
    ('reg_convs.1.bn.num_batches_tracked', ()),
]
# Outputs of that implementation, in eval mode, with the weights of
# ``_old_state_dict()`` on ``_old_inputs()``.
OLD_CLS_SCORE = [
    [0.38821691274642944, -0.36381295323371887],
    [0.3959725499153137, -0.39951780438423157],
    [0.43425655364990234, -0.32744094729423523],
]
OLD_BBOX_PRED = [
    [-0.6662781238555908, -0.09820714592933655, -0.11315764486789703,
     -0.526866614818573],
    [-0.7214549779891968, -0.051044315099716187, -0.11500558257102966,
     -0.5717951059341431],
    [-0.7158666849136353, -0.07222452759742737, -0.09498476982116699,
     -0.5748220682144165],
]  # yapf: disable


def _old_state_dict():
    """A checkpoint in ``OLD_LAYOUT`` with deterministic values."""
    state_dict = {}
    for i, (key, shape) in enumerate(OLD_LAYOUT):
        if key.endswith('num_batches_tracked'):
            state_dict[key] = torch.tensor(7)
            continue
        numel = math.prod(shape)
        t = torch.cos(torch.arange(numel, dtype=torch.float64) * 0.37 + i)
        t = 1 + 0.5 * t if key.endswith('running_var') else 0.3 * t
        state_dict[key] = t.reshape(shape).float()
    return state_dict


def _old_inputs():
    x = torch.arange(3 * 8 * 5 * 4, dtype=torch.float64) * 0.11
    return torch.sin(x).reshape(3, 8, 5, 4).float()


def test_state_dict_layout_is_unchanged():
    head = _head()
    assert [(k, tuple(v.shape))
            for k, v in head.state_dict().items()] == OLD_LAYOUT


def test_old_checkpoint_loads_strictly_with_identical_outputs():
    old_state_dict = _old_state_dict()
    head = _head()
    head.load_state_dict(old_state_dict, strict=True)
    head.eval()
    with torch.no_grad():
        cls_score, bbox_pred = head(_old_inputs())
    assert torch.allclose(
        cls_score, torch.tensor(OLD_CLS_SCORE), rtol=1e-5, atol=1e-6)
    assert torch.allclose(
        bbox_pred, torch.tensor(OLD_BBOX_PRED), rtol=1e-5, atol=1e-6)
    # saving again gives back the old checkpoint, key for key
    resaved = head.state_dict()
    assert list(resaved) == list(old_state_dict)
    assert all(torch.equal(resaved[k], v) for k, v in old_state_dict.items())


def test_foreign_checkpoint_layout_fails_loudly():
    state_dict = _old_state_dict()
    # e.g. plain convs without the ConvModule wrapper
    state_dict['cls_convs.0.weight'] = state_dict.pop(
        'cls_convs.0.conv.weight')
    with pytest.raises(RuntimeError, match=r'cls_convs\.0\.conv\.weight'):
        _head().load_state_dict(state_dict, strict=True)

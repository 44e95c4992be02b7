# Copyright (c) OpenMMLab. All rights reserved.
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmps.models.detectors import DICL, PersonSearchDetector
from mmps.registry import MODELS
from mmps.testing import (demo_person_search_inputs, get_detector_cfg,
                          prepare_instance_memory, shrink_person_search_cfg)

SHAPE = (3, 96, 128)
SF = (0.5, 0.5)  # the test pipeline resized the original images by 0.5


def _model(**test_cfg):
    cfg = shrink_person_search_cfg(get_detector_cfg('dicl_prw.py'))
    cfg.test_cfg.update(test_cfg)
    model = MODELS.build(cfg)
    model.init_weights()
    prepare_instance_memory(model)
    return model.eval()


def _test_data(is_query, seed=0, shapes=SHAPE):
    return demo_person_search_inputs(
        len(is_query),
        shapes,
        is_query=is_query,
        scale_factor=SF,
        use_box_type=True,
        seed=seed)


@torch.no_grad()
def _predict(model, data):
    """data_preprocessor + predict; returns (inputs, pred_instances)."""
    data = model.data_preprocessor(copy.deepcopy(data), False)
    outs = model.predict(data['inputs'], data['data_samples'])
    return data['inputs'], [o.pred_instances for o in outs]


def _set(model, **kwargs):
    model.test_cfg.update(kwargs)


def test_registered_and_dicl_is_a_person_search_detector():
    model = _model()
    assert type(model) is DICL
    assert isinstance(model, PersonSearchDetector)
    assert MODELS.get('PersonSearchDetector') is PersonSearchDetector


def test_loss_mode():
    model = _model().train()
    data = demo_person_search_inputs(
        2, SHAPE, num_items=[3, 1], use_box_type=True)
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
            'acc'} <= set(losses)
    loss, log = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.backbone.conv1.weight.grad is None  # frozen_stages=1
    assert model.backbone.layer3[0].downsample[0].weight.grad.abs().sum() > 0
    assert model.neck.fusion_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('num_items', [[0, 2], [0, 0]])
def test_loss_with_images_without_gt(num_items):
    model = _model().train()
    data = demo_person_search_inputs(
        2, SHAPE, num_items=num_items, use_box_type=True)
    data = model.data_preprocessor(data, True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    assert torch.isfinite(loss)
    loss.backward()


def test_tensor_mode():
    model = _model()
    data = model.data_preprocessor(_test_data([False]), False)
    cls_score, bbox_pred, embeds = model(**data, mode='tensor')[0]
    num = model.test_cfg.rpn.max_per_img
    assert cls_score.shape == (num, 2) and bbox_pred.shape == (num, 4)
    assert embeds.shape == (num, 256)


def test_gallery_predictions():
    model = _model()
    data = _test_data([False, False])
    inputs, preds = _predict(model, data)
    for i, pred in enumerate(preds):
        assert 0 < len(pred) <= 100
        assert set(pred.keys()) == {'bboxes', 'scores', 'labels', 'feats'}
        assert (pred.scores > 0.05).all() and (pred.labels == 0).all()
        # boxes in original pixels (input / 0.5)
        ori_h, ori_w = data['data_samples'][i].ori_shape
        assert pred.bboxes[:, 2].max() <= ori_w + 1e-3
        assert pred.bboxes[:, 3].max() <= ori_h + 1e-3
        assert pred.bboxes[:, 2].max() > SHAPE[2]  # i.e. rescaled
        assert pred.feats.shape == (len(pred), 256)
        # the reference's (p + g) / 2, not re-normalised: |f| = cos(a / 2)
        norms = pred.feats.norm(dim=1)
        assert (norms < 1).all() and (norms > 0.5).all()

    _set(model, reid_mode='scene')
    _, scene = _predict(model, data)
    # crop_box='detection': g = crop embedding of the final box
    _set(model, reid_mode='fused', crop_box='detection')
    _, by_det = _predict(model, data)
    _set(model, normalize_fused=True)
    _, normed = _predict(model, data)
    for i, (f, s, d, n) in enumerate(zip(preds, scene, by_det, normed)):
        assert torch.equal(f.bboxes, s.bboxes)
        assert torch.equal(f.bboxes, d.bboxes)
        assert torch.allclose(s.feats.norm(dim=1), torch.ones(len(s)))
        with torch.no_grad():
            g = model.embed_boxes(inputs, i,
                                  f.bboxes * f.bboxes.new_tensor(SF * 2))
        assert torch.allclose(d.feats, (s.feats + g) / 2, atol=1e-5)
        assert torch.allclose(
            n.feats, F.normalize(s.feats + g, dim=1), atol=1e-4)
    with pytest.raises(ValueError, match='crop_box'):
        _model(crop_box='final')
    with pytest.raises(ValueError, match='normalize_fused'):
        _model(normalize_fused='yes')


def test_fused_equals_fused_all_proposals():
    model = _model()
    data = _test_data([False, False], seed=3)
    _, fused = _predict(model, data)
    _set(model, reid_mode='fused_all_proposals')
    _, ref = _predict(model, data)
    for f, r in zip(fused, ref):
        assert len(f) > 0
        assert torch.equal(f.bboxes, r.bboxes)
        assert torch.equal(f.scores, r.scores)
        assert torch.allclose(f.feats, r.feats, atol=1e-5)


@pytest.mark.parametrize('reid_mode,normalize', [('fused', False),
                                                 ('fused', True),
                                                 ('scene', False)])
def test_query_feature_of_the_box(reid_mode, normalize):
    model = _model(reid_mode=reid_mode, normalize_fused=normalize)
    data = _test_data([True], seed=1)
    sample = data['data_samples'][0]
    box = sample.gt_instances.bboxes.tensor  # input pixels, as every box
    inputs, (pred, ) = _predict(model, data)
    torch.testing.assert_close(pred.bboxes, box / 0.5)  # original pixels
    assert pred.scores.tolist() == [1.0] and pred.labels.tolist() == [0]
    assert pred.feats.shape == (1, 256)

    with torch.no_grad():
        x = model.extract_feat(inputs)

        def feature(b):
            p = model.roi_head.embed_rois(x,
                                          torch.cat([torch.zeros(1, 1), b], 1))
            if reid_mode == 'scene':
                return p
            g = model.embed_crops(model.crop_instances(inputs, 0, b))
            return F.normalize(p + g, dim=1) if normalize else (p + g) / 2

        expected = feature(box)
        unscaled = feature(box / 0.5)  # had it taken them as original
    assert torch.allclose(pred.feats, expected, atol=1e-5)
    assert not torch.allclose(pred.feats, unscaled, atol=1e-3)


def test_mixed_batch_of_gallery_and_query_samples():
    model = _model()
    data = _test_data([False, True, False], seed=2)
    _, preds = _predict(model, data)
    assert len(preds[1]) == 1 and len(preds[0]) > 1
    for i in range(3):
        alone = dict(
            inputs=data['inputs'][i:i + 1],
            data_samples=data['data_samples'][i:i + 1])
        _, (pred, ) = _predict(model, alone)
        assert torch.allclose(pred.bboxes, preds[i].bboxes, atol=1e-3)
        assert torch.allclose(pred.feats, preds[i].feats, atol=1e-5)


@pytest.mark.parametrize('reid_mode',
                         ['fused', 'scene', 'fused_all_proposals'])
def test_images_without_detections(reid_mode):
    model = _model(reid_mode=reid_mode)
    model.roi_head.test_cfg.score_thr = 1.0  # nothing passes
    _, preds = _predict(model, _test_data([False, True]))
    assert len(preds[0]) == 0
    assert preds[0].feats.shape == (0, 256)
    assert preds[0].bboxes.shape == (0, 4)
    assert len(preds[1]) == 1  # the query box does not need a detection


def test_empty_proposals():
    model = _model()
    data = _test_data([False, False])
    for sample in data['data_samples']:
        sample.proposals = InstanceData(bboxes=torch.zeros(0, 4))
    _, preds = _predict(model, data)
    assert [len(p) for p in preds] == [0, 0]
    assert preds[0].feats.shape == (0, 256)


def test_query_mode_is_gone_with_a_pointer_to_the_protocols():
    with pytest.raises(ValueError, match='PersonSearchMetric'):
        _model(query_mode='best_iou_det')


def test_crop_instances():
    model = _model()
    inputs = torch.randn(2, 3, 20, 24)
    # an integer box the size of the crop is cut out exactly
    crop = model.crop_instances(
        inputs, 1, torch.tensor([[2., 3., 5., 7.]]), size=(4, 3))
    assert torch.allclose(crop[0], inputs[1, :, 3:7, 2:5], atol=1e-6)
    crops = model.crop_instances(
        inputs, torch.tensor([0, 1]),
        torch.tensor([[0., 0., 24., 20.], [2., 3., 5., 7.]]))
    assert crops.shape == (2, 3, 224, 96)
    assert model.crop_instances(inputs, 0,
                                torch.zeros(0, 4)).shape == (0, 3, 224, 96)


def test_crop_instances_match_training_views():
    """Test crops are made like the pipeline's InstanceViews crops."""
    import numpy as np

    from mmps.datasets.transforms import InstanceViews
    rng = np.random.default_rng(0)
    # a smooth image, so that the two resize filters are comparable
    yy, xx = np.mgrid[0:300, 0:200]
    img = np.stack([yy * 0.8, xx * 1.2, (yy + xx) * 0.5], -1)
    img = (img + rng.uniform(0, 2, img.shape)).astype(np.uint8)
    views = InstanceViews(crop_size=(224, 96))
    inputs = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    model = _model()
    # enlarging (cv2 INTER_LINEAR) and shrinking (cv2 INTER_AREA) boxes;
    # a box 2 px off gives a mean error of ~2
    for box, tol in (([10.4, 20.2, 50.7, 120.9], 0.6),
                     ([5.0, 3.0, 190.0, 290.0], 0.6)):
        ref = views.crop(img, np.array(box)).transpose(2, 0, 1)
        crop = model.crop_instances(inputs, 0, torch.tensor([box]))[0]
        err = (crop - torch.from_numpy(ref.astype(np.float32))).abs()
        assert err.mean() < tol, (box, float(err.mean()))


def test_embed_crops():
    model = _model()
    with torch.no_grad():
        emb = model.embed_crops(torch.randn(3, 3, 224, 96))
        assert emb.shape == (3, 256)
        assert torch.allclose(emb.norm(dim=1), torch.ones(3))
        # crops share the scene branch's weights: the crop of a whole
        # 224x96 image is that image's 14x6 map through the shared heads
        img = torch.randn(1, 3, 224, 96)
        x = model.extract_feat(img)
        ref = model.roi_head.embed_roi_feats(x[0])
        assert torch.allclose(model.embed_crops(img), ref, atol=1e-6)
        assert model.embed_crops(torch.zeros(0, 3, 224, 96)).shape == (0, 256)
        with pytest.raises(ValueError, match='crop_size'):
            model.embed_crops(torch.randn(1, 3, 112, 48))


def test_invalid_test_modes():
    with pytest.raises(ValueError, match='reid_mode'):
        _model(reid_mode='both')
    with pytest.raises(ValueError, match='crop_box'):
        _model(crop_box='detection_box')

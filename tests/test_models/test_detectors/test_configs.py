# Copyright (c) OpenMMLab. All rights reserved.
"""Every config under configs/ (except _base_) builds and runs one
iteration of ``loss`` and ``predict`` -- shrunk for CPU the way MMDetection
tests its configs (small backbone, narrow heads, few RoIs, tiny images, no
pretrained init)."""
import copy
import functools
import glob
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder

from mmps.registry import METRICS, MODELS
from mmps.testing import (demo_person_search_inputs, get_config,
                          get_config_directory, prepare_instance_memory,
                          shrink_person_search_cfg, use_roi_align_without_cuda)
from .test_zoo_backbones import ZOO_CONFIGS

CONFIG_DIR = get_config_directory()
CONFIGS = sorted(
    osp.relpath(p, CONFIG_DIR)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, CONFIG_DIR).split(osp.sep))
# other zoo backbones (Swin, ResNeXt, MMPretrain's, an optional extra) are
# shrunk by their own sizes in test_zoo_backbones.py
RESNET_CONFIGS = [
    c for c in CONFIGS if c.replace(osp.sep, '/') not in ZOO_CONFIGS
]


def test_all_configs_found():
    assert {
        'dicl_prw.py', 'dicl_cuhk-sysu.py', 'dicl_synthetic_prw.py',
        'dicl_synthetic_cuhk-sysu.py',
        osp.join('dicl', 'dicl_r50-c4_1xb4-26e_prw.py')
    } <= set(CONFIGS)
    assert set(ZOO_CONFIGS) <= {c.replace(osp.sep, '/') for c in CONFIGS}


@pytest.mark.parametrize('fname', RESNET_CONFIGS)
def test_config_builds_and_runs(fname):
    cfg = get_config(fname)
    assert cfg.default_scope == 'mmps'
    METRICS.build(copy.deepcopy(cfg.test_evaluator))
    model = MODELS.build(
        shrink_person_search_cfg(
            use_roi_align_without_cuda(copy.deepcopy(cfg.model))))
    model.init_weights()
    prepare_instance_memory(model)

    model.train()
    data = demo_person_search_inputs(
        2, [(3, 96, 128), (3, 80, 112)], num_items=[3, 0], use_box_type=True)
    data = model.data_preprocessor(data, True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    assert torch.isfinite(loss)
    loss.backward()

    model.eval()
    data = demo_person_search_inputs(
        2, (3, 96, 128),
        is_query=[False, True],
        scale_factor=(0.5, 0.5),
        use_box_type=True)
    with torch.no_grad():
        gallery, query = model.test_step(data)
    assert gallery.pred_instances.feats.shape[1] == 256
    assert query.pred_instances.feats.shape == (1, 256)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available')
@pytest.mark.parametrize('fname', ['dicl_prw.py', 'dicl_cuhk-sysu.py'])
def test_reference_config_refuses_cpu_at_build_with_the_switch(fname):
    import argparse

    from mmengine.config import DictAction

    from mmps.models.roi_heads.person_search_roi_head import \
        ROI_ALIGN_CFG_OPTIONS
    cfg = get_config(fname)
    with pytest.raises(RuntimeError, match='DeformRoIPoolPack') as err:
        MODELS.build(copy.deepcopy(cfg.model))
    assert ROI_ALIGN_CFG_OPTIONS in str(err.value)
    # the printed --cfg-options line, parsed as tools/train.py parses it,
    # gives a RoIAlign with the same output size, and the model builds
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    words = ROI_ALIGN_CFG_OPTIONS.replace('"', '').split()
    cfg.merge_from_dict(parser.parse_args(words).cfg_options)
    assert cfg.model.roi_head.bbox_roi_extractor.roi_layer == dict(
        type='RoIAlign', output_size=(14, 6), sampling_ratio=0)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    MODELS.build(model_cfg)


REF_CLUSTERING = dict(k1=30, k2=6, eps=(0.68, 0.70, 0.72))
# the synthetic sets have ~11 boxes per identity against ~37 (see the configs)
SYN_CLUSTERING = dict(k1=10, k2=6, eps=(0.58, 0.60, 0.62))


# --------------------------------------------------------------------------- #
# The reference settings, checked through what the built objects do
# --------------------------------------------------------------------------- #
REFERENCE_CONFIGS = ['dicl_prw.py', 'dicl_cuhk-sysu.py']
DICL_CONFIGS = REFERENCE_CONFIGS + [
    'dicl_synthetic_prw.py', 'dicl_synthetic_cuhk-sysu.py'
]
#: RoI positives at IoU >= this (train_cfg.rcnn.assigner), per config
POS_IOU = {
    'dicl_prw.py': 0.7,
    'dicl_cuhk-sysu.py': 0.6,
    'dicl_synthetic_prw.py': 0.7,
    'dicl_synthetic_cuhk-sysu.py': 0.6
}


@functools.lru_cache(maxsize=None)
def _built_model(fname):
    """The full-size model of a config, built once and initialised.

    RoIAlign of the same output size stands in for the CUDA-only
    ``DeformRoIPoolPack``; no ImageNet checkpoint (no file here).
    """
    model_cfg = use_roi_align_without_cuda(
        copy.deepcopy(get_config(fname).model))
    model_cfg.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


@pytest.fixture(scope='module')
def synthetic_prw(tmp_path_factory):
    """A small synthetic PRW set: 120 x 200 frames."""
    from mmps.datasets.synthetic import make_synthetic_prw
    return make_synthetic_prw(
        str(tmp_path_factory.mktemp('prw')),
        seed=0,
        num_images=12,
        num_ids=4,
        image_size=(120, 200)).root


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_backbone_and_neck(fname):
    """R50 caffe, C5 at stride 16, frozen stem + stage 1, frozen BN, DCN neck:
    one 1024-channel stride-16 map."""
    from mmcv.ops import DeformConv2dPack
    model = _built_model(fname)
    backbone = model.backbone
    # ResNet-50: 3, 4, 6, 3 bottlenecks; caffe style: the stride of a
    # block sits in its first 1x1 conv
    assert [len(getattr(backbone, f'layer{i}')) for i in (1, 2, 3, 4)] == [
        3, 4, 6, 3
    ]
    assert backbone.layer2[0].conv1.stride == (2, 2)
    assert backbone.layer2[0].conv2.stride == (1, 1)
    # the reference's stem and stage 1 frozen, frozen BN everywhere: no
    # parameter of theirs, and no BN parameter at all, is trained
    frozen = [backbone.conv1, backbone.norm1, backbone.layer1]
    assert not any(p.requires_grad for m in frozen for p in m.parameters())
    assert backbone.layer2[0].conv1.weight.requires_grad
    bns = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(
        p.requires_grad for m in bns for p in m.parameters())

    model.train()
    try:
        # norm_eval: BN stays in eval mode in training, its statistics fixed
        assert not any(m.training for m in bns)
        stats = [m.running_mean.clone() for m in bns]
        with torch.no_grad():
            feats = backbone(torch.rand(1, 3, 224, 320) * 255)
            out = model.neck(feats)
    finally:
        model.eval()
    assert all(torch.equal(s, m.running_mean) for s, m in zip(stats, bns))
    # C3, C4, C5 at strides 8, 16, 16 (C5 kept at stride 16)
    assert [tuple(f.shape) for f in feats] == [(1, 512, 28, 40),
                                              (1, 1024, 14, 20),
                                              (1, 2048, 14, 20)]
    assert [tuple(f.shape) for f in out] == [(1, 1024, 14, 20)]
    assert isinstance(model.neck.lateral_conv, DeformConv2dPack)
    assert isinstance(model.neck.fusion_conv, DeformConv2dPack)
    assert isinstance(model.roi_head.shared_head.conv, DeformConv2dPack)
    # the reference's inits: Xavier on the neck's offset convs (non-zero),
    # zero offsets in the head DCN, DCN weights U(+-1/sqrt(fan_in))
    assert model.neck.fusion_conv.conv_offset.weight.abs().sum() > 0
    assert model.roi_head.shared_head.conv.conv_offset.weight.abs().sum() == 0
    for dcn in (model.neck.lateral_conv, model.neck.fusion_conv,
                model.roi_head.shared_head.conv):
        w = dcn.weight
        bound = 1 / math.sqrt(w[0].numel())
        assert 0.98 * bound < w.abs().max() <= bound
    # the ImageNet checkpoint: a local file (nothing downloaded). The file
    # is not in the tree, so this stays a check of the config.
    init_cfg = get_config(fname).model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained'
    assert not init_cfg.checkpoint.startswith(('http', 'open'))


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_data_preprocessor(fname):
    """Caffe BGR mean, std 1, no channel swap, padding to a multiple of 32."""
    from mmdet.structures import DetDataSample
    preprocessor = _built_model(fname).data_preprocessor
    img = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    out = preprocessor(
        dict(inputs=[img], data_samples=[DetDataSample()]), False)
    x = out['inputs']
    assert x.shape == (1, 3, 64, 96)
    mean = torch.tensor([103.530, 116.280, 123.675])[:, None, None]
    torch.testing.assert_close(x[0, :, :50, :70], img.float() - mean)
    assert torch.all(x[0, :, 50:] == 0) and torch.all(x[0, :, :, 70:] == 0)
    # the instance views get the same normalisation
    crops = torch.randint(0, 256, (2, 3, 224, 96), dtype=torch.uint8)
    torch.testing.assert_close(
        preprocessor.preprocess_crops(crops), crops.float() - mean)


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_anchors(fname):
    """RPN anchors of 32 ... 512 px, h / w ratios 1, 2, 3, stride 16."""
    gen = _built_model(fname).rpn_head.prior_generator
    assert gen.num_levels == 1 and gen.num_base_priors == [15]
    anchors = gen.grid_priors([(2, 3)], device='cpu')[0]
    assert anchors.shape == (2 * 3 * 15, 4)
    w = anchors[:, 2] - anchors[:, 0]
    h = anchors[:, 3] - anchors[:, 1]
    sizes = sorted({round(float(s)) for s in (w * h).sqrt()})
    assert sizes == [32, 64, 128, 256, 512]
    assert sorted({round(float(r), 3) for r in h / w}) == [1.0, 2.0, 3.0]
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    assert sorted({round(float(c), 3) for c in centres[:, 0]}) == [0, 16, 32]
    assert sorted({round(float(c), 3) for c in centres[:, 1]}) == [0, 16]


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_roi_head(fname):
    """14 x 6 RoI features at stride 16, the box towers (512, 512) with
    Normal(0, 0.01) convs, the box coder / loss, the 86016 -> 256 re-id
    embedding with PyTorch's Linear init."""
    model = _built_model(fname)
    roi = model.roi_head
    # the reference's deformable RoI pool can't be built here: its config;
    # the RoIAlign stand-in has its output size
    layer = get_config(fname).model.roi_head.bbox_roi_extractor.roi_layer
    assert layer == dict(
        type='DeformRoIPoolPack',
        output_size=(14, 6),
        output_channels=1024,
        sampling_ratio=0,
        gamma=0.1)
    # features that hold their own (x, y) cell: a RoI reads the cells of
    # its box at stride 16, in a 14 x 6 grid
    feats = torch.zeros(1, 1024, 20, 12)
    feats[0, 0] = torch.arange(12.)[None, :]
    feats[0, 1] = torch.arange(20.)[:, None]
    rois = torch.tensor([[0., 0., 0., 96., 224.], [0., 16., 32., 112., 256.]])
    pooled = roi.bbox_roi_extractor((feats, ), rois)
    assert pooled.shape == (2, 1024, 14, 6)
    torch.testing.assert_close(pooled[0, 0, 0], torch.arange(6.))
    torch.testing.assert_close(pooled[0, 1, :, 0], torch.arange(14.))
    torch.testing.assert_close(pooled[1, 0, 0], torch.arange(1., 7.))
    torch.testing.assert_close(pooled[1, 1, :, 0], torch.arange(2., 16.))

    x = torch.randn(3, 1024, 14, 6)
    with torch.no_grad():
        shared = roi.shared_head(x)
        head = roi.bbox_head
        tower = [tuple(head.cls_convs[:i + 1](shared).shape[1:2])
                 for i in range(len(head.cls_convs))]
        cls_score, bbox_pred = head(shared)
        embeds = roi.reid_head(shared)
    assert shared.shape == x.shape
    assert tower == [(512, ), (512, )]
    assert len(head.reg_convs) == 2
    assert cls_score.shape == (3, 2) and bbox_pred.shape == (3, 4)
    for conv in [m.conv for m in (*head.cls_convs, *head.reg_convs)]:
        assert conv.bias is None
        assert abs(float(conv.weight.std()) - 0.01) < 3e-4
        assert abs(float(conv.weight.mean())) < 3e-4
    # box deltas divided by stds (0.1, 0.1, 0.2, 0.2), L1 weighted 10
    proposal = torch.tensor([[0., 0., 10., 20.]])
    e = math.exp(0.2)
    gt = torch.tensor([[6 - 5 * e, 12 - 10 * e, 6 + 5 * e, 12 + 10 * e]])
    torch.testing.assert_close(
        head.bbox_coder.encode(proposal, gt), torch.ones(1, 4))
    loss = head.loss_bbox(torch.ones(2, 4), torch.zeros(2, 4))
    assert float(loss) == pytest.approx(10.)
    # re-id: flatten 1024 x 14 x 6 -> 256, unit norm; PyTorch's default
    # Linear init U(+-1/sqrt(86016)) survives init_weights()
    assert embeds.shape == (3, 256)
    torch.testing.assert_close(embeds.norm(dim=1), torch.ones(3))
    weight = roi.reid_head.fc.weight
    assert weight.shape == (256, 86016)
    bound = 1 / math.sqrt(86016)
    assert 0.99 * bound < weight.abs().max() <= bound


@pytest.mark.parametrize('fname', DICL_CONFIGS)
def test_the_assigner_ignores_between_the_thresholds(fname):
    """The built RoI assigner: >= 0.7 (PRW) / 0.6 (CUHK-SYSU) positive,
    < 0.1 negative, the rest ignored (-1), never sampled."""
    from mmengine.structures import InstanceData
    pos_iou = POS_IOU[fname]
    assigner = _built_model(fname).roi_head.bbox_assigner
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([0]))
    ious = [1., 0.8, 0.65, 0.5, 0.11, 0.09, 0.05]
    priors = torch.tensor([[0., 0., 10., 10 * iou] for iou in ious] +
                          [[20., 20., 30., 30.]])  # IoU 0
    res = assigner.assign(InstanceData(priors=priors), gt)
    expected = [1 if iou >= pos_iou else (0 if iou < 0.1 else -1)
                for iou in ious + [0.]]
    assert res.gt_inds.tolist() == expected


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_roi_sampler(fname):
    """128 RoIs per image, at most half positive, the GT boxes added."""
    from mmengine.structures import InstanceData
    roi = _built_model(fname).roi_head
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 20.], [100., 0., 110., 20.]]),
        labels=torch.tensor([0, 0]))
    near = torch.tensor([[0., 0., 10., 20.]]).repeat(200, 1)
    near[:, 3] += torch.linspace(0, 1, 200)  # IoU >= 0.95
    far = torch.tensor([[300., 300., 310., 320.]]).repeat(300, 1)
    far += torch.arange(300.)[:, None]
    torch.manual_seed(0)
    for priors, num_pos in ((torch.cat([near, far]), 64), (far, 2)):
        pred = InstanceData(priors=priors)
        res = roi.bbox_sampler.sample(
            roi.bbox_assigner.assign(pred, gt), pred, gt)
        assert len(res.pos_inds) == num_pos
        assert len(res.pos_inds) + len(res.neg_inds) == 128
    # with no other positive the two GT boxes are the positives
    assert res.pos_is_gt.tolist() == [1, 1]


def _rpn_maps(anchors, targets, logits, size):
    """RPN outputs that decode anchor k to ``targets[k]``, score ``logits[k]``.

    The anchors are in mmdet's (h, w, anchor) order.
    """
    h, w = size
    deltas = DeltaXYWHBBoxCoder().encode(anchors, targets)
    cls = logits.reshape(h, w, -1).permute(2, 0, 1)[None]
    reg = deltas.reshape(h, w, -1).permute(2, 0, 1)[None]
    return [cls], [reg]


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_rpn_proposals(fname):
    """Training / test proposals: nms_pre 12000 / 6000, NMS at IoU 0.7,
    min_bbox_size 8 / 16, max_per_img 2000 / 300."""
    model = _built_model(fname)
    head = model.rpn_head
    size = (30, 40)  # 18000 anchors
    metas = [dict(img_shape=(480, 640))]
    anchors = head.prior_generator.grid_priors([size], device='cpu')[0]
    num = anchors.size(0)
    logits = torch.linspace(6, -6, num)  # anchor k is ranked k-th
    b1 = [100., 100., 200., 300.]
    targets = torch.tensor([[10., 10., 22., 22.]]).repeat(num, 1)  # 12 px
    targets[1:5998] = torch.tensor(b1)
    targets[5998] = torch.tensor([116., 100., 216., 300.])  # IoU 0.72: out
    targets[5999] = torch.tensor([119., 100., 219., 300.])  # IoU 0.68: in
    targets[6000:11998] = torch.tensor([400., 100., 500., 300.])
    targets[11998] = torch.tensor([416., 100., 516., 300.])  # IoU 0.72: out
    targets[11999] = torch.tensor([400., 320., 500., 460.])
    targets[12000:] = torch.tensor([10., 320., 110., 460.])
    cls, reg = _rpn_maps(anchors, targets, logits, size)
    cfgs = dict(
        train=model.train_cfg['rpn_proposal'], test=head.test_cfg)
    expected = dict(
        # the 12 px box (rank 0) passes min_bbox_size 8, not 16
        train=[[10., 10., 22., 22.], b1, [119., 100., 219., 300.],
               [400., 100., 500., 300.], [400., 320., 500., 460.]],
        test=[b1, [119., 100., 219., 300.]])
    with torch.no_grad():
        for mode, cfg in cfgs.items():
            res = head.predict_by_feat(
                cls, reg, batch_img_metas=metas, cfg=cfg)[0]
            torch.testing.assert_close(
                res.bboxes, torch.tensor(expected[mode]), atol=0.05, rtol=0)
    # max_per_img: every anchor its own 18 x 18 box, random scores
    img_w = 20 * 150
    ys, xs = torch.div(torch.arange(num), 150, rounding_mode='floor'), \
        torch.arange(num) % 150
    cells = torch.stack([xs * 20., ys * 20., xs * 20. + 18, ys * 20. + 18], 1)
    cls, reg = _rpn_maps(anchors, cells, torch.randn(num), size)
    metas = [dict(img_shape=(20 * 120, img_w))]
    with torch.no_grad():
        counts = [
            len(head.predict_by_feat(cls, reg, batch_img_metas=metas,
                                     cfg=cfg)[0]) for cfg in cfgs.values()
        ]
    assert counts == [2000, 300]


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_rpn_ignores_anchors_across_the_border(fname):
    """RPN training targets: an anchor crossing the image border by a pixel
    is not trained on (allowed_border 0); one inside is."""
    from mmengine.structures import InstanceData
    head = _built_model(fname).rpn_head
    anchors = torch.tensor([[10., 10., 60., 110.], [-1., 190., 49., 290.],
                            [100., 100., 150., 200.]])
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 60., 110.]]),
                      labels=torch.tensor([0]))
    labels, label_weights = head._get_targets_single(
        anchors, torch.ones(3, dtype=torch.bool), gt,
        dict(img_shape=(300, 300)), None)[:2]
    assert label_weights.tolist() == [1., 0., 1.]
    assert labels[0] == 0  # the GT's anchor: positive (class 0)


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_rcnn_test_settings(fname):
    """Detections: score > 0.05, NMS at IoU 0.4, at most 100 per image."""
    roi = _built_model(fname).roi_head
    head, cfg = roi.bbox_head, roi.test_cfg
    meta = dict(img_shape=(2000, 2000), scale_factor=(1., 1.))

    def detect(boxes, fg_scores):
        rois = torch.cat([torch.zeros(len(boxes), 1), boxes], 1)
        p = torch.as_tensor(fg_scores)
        cls_score = torch.stack([torch.log(p / (1 - p)),
                                 torch.zeros_like(p)], 1)
        return head._predict_by_feat_single(
            rois, cls_score, torch.zeros(len(boxes), 4), meta,
            rcnn_test_cfg=cfg)

    b = torch.tensor([0., 0., 100., 200.])
    shift = torch.tensor([1., 0., 1., 0.])
    # IoU (100 - d) / (100 + d): d = 45 -> 0.38 kept, d = 40 -> 0.43 out
    boxes = torch.stack([
        b, b + 45 * shift, b + 500 + 40 * shift, b + 500,
        b + 1000, b + 1500
    ])
    res = detect(boxes, [0.9, 0.8, 0.8, 0.9, 0.06, 0.04])
    torch.testing.assert_close(
        res.bboxes, boxes[[0, 3, 1, 4]], atol=1e-3, rtol=0)
    assert res.proposal_inds.tolist() == [0, 3, 1, 4]
    many = torch.tensor([[0., 0., 10., 10.]]) + \
        torch.arange(150.)[:, None] * 12
    res = detect(many, torch.linspace(0.9, 0.5, 150))
    assert res.proposal_inds.tolist() == list(range(100))


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_test_time_features(fname):
    """The eval model's features: un-normalised (p + g) / 2, the crop of the
    proposal (a shrunk model for the forward)."""
    cfg = get_config(fname)
    assert _built_model(fname)._test_modes() == dict(
        reid_mode='fused', crop_box='proposal', normalize_fused=False)
    torch.manual_seed(0)
    model = MODELS.build(
        shrink_person_search_cfg(
            use_roi_align_without_cuda(copy.deepcopy(cfg.model))))
    model.init_weights()
    model.eval()
    data = demo_person_search_inputs(
        2, (3, 96, 128),
        is_query=[False, True],
        use_box_type=True)
    with torch.no_grad():
        gallery, query = model.test_step(copy.deepcopy(data))
        inputs = model.data_preprocessor(data, False)['inputs']
        box = query.pred_instances.bboxes  # the query box, scale 1
        x = model.extract_feat(inputs)
        p = model.roi_head.embed_rois(x, torch.cat([torch.ones(1, 1), box],
                                                   1))
        g = model.embed_boxes(inputs, 1, box)
    torch.testing.assert_close(
        query.pred_instances.feats, (p + g) / 2, atol=1e-5, rtol=0)
    norms = gallery.pred_instances.feats.norm(dim=1)
    assert len(norms) > 0 and bool(torch.all(norms <= 1 + 1e-5))
    assert float(norms.min()) < 0.999


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_optimizer_and_schedule(fname):
    """SGD lr 0.001, momentum 0.9, weight decay 5e-4, gradients clipped at
    norm 10; linear warm-up from lr / 200 over 2242 iterations, x 0.1 at
    epochs 16 and 22 of 26."""
    from mmengine.optim import build_optim_wrapper

    from mmps.registry import PARAM_SCHEDULERS
    cfg = get_config(fname)
    param = nn.Parameter(torch.ones(2))
    wrapper = build_optim_wrapper(
        nn.ParameterList([param]), copy.deepcopy(cfg.optim_wrapper))
    # two steps on a gradient of norm 50, clipped to 10: (6, 8)
    lr, wd, mom = 0.001, 5e-4, 0.9
    expected = torch.ones(2)
    buf = None
    for _ in range(2):
        wrapper.update_params((param * torch.tensor([30., 40.])).sum())
        d = torch.tensor([6., 8.]) + wd * expected
        buf = d if buf is None else mom * buf + d
        expected = expected - lr * buf
    torch.testing.assert_close(param.data, expected)

    epoch_length = 1000
    wrapper = build_optim_wrapper(
        nn.Linear(1, 1), copy.deepcopy(cfg.optim_wrapper))
    schedulers = [
        PARAM_SCHEDULERS.build(
            copy.deepcopy(c),
            default_args=dict(optimizer=wrapper, epoch_length=epoch_length))
        for c in cfg.param_scheduler
    ]
    max_epochs = cfg.train_cfg.max_epochs  # read by the training loop
    lrs = {}
    for epoch in range(max_epochs):  # as ParamSchedulerHook steps them
        for it in range(epoch_length):
            lrs[epoch * epoch_length + it] = wrapper.get_lr()['lr'][0]
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    approx = functools.partial(pytest.approx, rel=1e-6)
    assert lrs[0] == approx(0.001 / 200)
    # mmengine's LinearLR: linear in the iteration, the full lr from
    # iteration end - 1 = 2241 on
    assert lrs[1121] == approx(0.001 * (1 / 200 + 199 / 200 * 1121 / 2241))
    assert lrs[2240] < 0.001 and lrs[2242] == approx(0.001)
    assert lrs[16 * epoch_length - 1] == approx(0.001)
    assert lrs[16 * epoch_length] == approx(1e-4)
    assert lrs[22 * epoch_length - 1] == approx(1e-4)
    assert lrs[22 * epoch_length] == approx(1e-5)
    assert len(lrs) == 26 * epoch_length


@pytest.mark.parametrize('fname', REFERENCE_CONFIGS)
def test_reference_pipelines_and_loader(fname, synthetic_prw):
    """Training: short side 400 ... 1200 (x 5/3), flip, 224 x 96 views, then
    the 14 x 6 occlusion grid; test: resized to fit 1500 x 900; batches of
    4 (the loader on the synthetic PRW set)."""
    import numpy as np
    from mmengine.runner import Runner

    from mmps.datasets import PRWDataset
    cfg = get_config(fname)
    pipeline = cfg.train_dataloader.dataset.pipeline
    dataset = PRWDataset(
        data_root=synthetic_prw, split='train', pipeline=pipeline)
    np.random.seed(0)
    heights = set()
    for _ in range(5):
        out = dataset[0]
        _, h, w = out['inputs'].shape
        heights.add(h)
        assert w == round(h * 5 / 3)
        crops = out['data_samples'].gt_instances.crops
        assert crops.shape[1:] == (3, 224, 96)
    assert heights <= {400, 600, 800, 900, 1000, 1200} and len(heights) > 1
    occlusion = [t for t in dataset.pipeline.transforms
                 if type(t).__name__ == 'BoxOcclusion']
    assert [(t.grid, t.num_cells, t.prob, t.mode) for t in occlusion] == [
        ((14, 6), 2, 0.5, 'reference')
    ]

    test = PRWDataset(
        data_root=synthetic_prw,
        split='test',
        pipeline=cfg.test_dataloader.dataset.pipeline)
    out = test[0]
    assert out['inputs'].shape == (3, 900, 1500)  # 120 x 200 x 7.5
    assert out['data_samples'].scale_factor == pytest.approx((7.5, 7.5))

    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader_cfg.dataset.update(type='PRWDataset', data_root=synthetic_prw)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    assert len(next(iter(loader))['inputs']) == 4


@pytest.mark.parametrize('fname,min_samples,clustering', [
    ('dicl_prw.py', 4, REF_CLUSTERING),
    ('dicl_cuhk-sysu.py', 2, REF_CLUSTERING),
    ('dicl_synthetic_prw.py', 4, SYN_CLUSTERING),
    ('dicl_synthetic_cuhk-sysu.py', 2, SYN_CLUSTERING)
])
def test_dicl_training_settings(fname, min_samples, clustering,
                                synthetic_prw):
    """DICL's training objects, built from the reference and the CPU
    configs alike: memory, losses, instance views, hooks."""
    from mmps.datasets import PRWDataset
    from mmps.engine.hooks import InstanceMemoryInitHook, PseudoLabelHook
    from mmps.models.roi_heads.dicl_roi_head import DICLRoIHead
    from mmps.registry import HOOKS
    cfg = get_config(fname)
    model = _built_model(fname)
    roi = model.roi_head
    assert isinstance(roi, DICLRoIHead)
    assert roi.triplet_positives == 'mean'
    # memory: 256-d slots, M <- normalize(0.2 M + 0.8 f)
    memory = copy.deepcopy(roi.memory)
    assert memory.feat_dim == roi.embed_dim == 256
    memory.resize_(1)
    e = torch.eye(256)
    memory.init_features(torch.tensor([0]), e[:1])
    memory.update(e[1:2], torch.tensor([0]), gather=False)
    torch.testing.assert_close(memory.features[0],
                               F.normalize(0.2 * e[0] + 0.8 * e[1], dim=0))
    # the losses with the reference's settings
    assert (type(roi.loss_id).__name__, roi.loss_id.temperature,
            roi.loss_id.top_percent, roi.loss_id.loss_weight) == (
                'ClusterMemoryContrastLoss', 0.05, 0.6, 1.0)
    assert (type(roi.loss_sim).__name__,
            roi.loss_sim.loss_weight) == ('ManyToOneLoss', 1.0)
    assert (type(roi.loss_kl).__name__, roi.loss_kl.loss_weight,
            roi.loss_kl.temperature, roi.loss_kl.reduction) == (
                'DenseSimilarityKLLoss', 0.1, 1.0, 'mean')
    assert (type(roi.loss_triplet).__name__, roi.loss_triplet.margin,
            roi.loss_triplet.bg_weight, roi.loss_triplet.loss_weight) == (
                'BatchHardTripletWithBackgroundLoss', 0.3, 0.25, 1.0)
    # the views: crop_size (224 x 96) crops, cut after the flip and before
    # the occlusion; a crop gives a RoI-sized (14 x 6) map, RoI size x 16
    crop_size = tuple(model.crop_size)
    assert crop_size == (224, 96)
    dataset = PRWDataset(
        data_root=synthetic_prw,
        split='train',
        pipeline=cfg.train_dataloader.dataset.pipeline)
    names = [type(t).__name__ for t in dataset.pipeline.transforms]
    flip = names.index('RandomFlip')
    assert names[flip + 1:] == [
        'InstanceViews', 'BoxOcclusion', 'PackPersonSearchInputs'
    ]
    crops = dataset[0]['data_samples'].gt_instances.crops
    assert crops.shape[1:] == (3, *crop_size)
    with torch.no_grad():
        crop = torch.zeros(1, 3, *crop_size)
        feat = model.extract_feat(crop)[0]
        assert model.embed_crops(crop).shape == (1, 256)
    roi_size = tuple(roi.reid_head.roi_size)
    assert tuple(feat.shape[-2:]) == roi_size == (crop_size[0] // 16,
                                                  crop_size[1] // 16)
    assert tuple(roi.bbox_roi_extractor.roi_layers[0].output_size) == roi_size
    # the hooks: memory filled before training, re-clustered every epoch
    hooks = [HOOKS.build(copy.deepcopy(h)) for h in cfg.custom_hooks]
    assert [type(h) for h in hooks] == [InstanceMemoryInitHook,
                                        PseudoLabelHook]
    hook = hooks[1]
    assert hook.label_source == 'cluster'
    assert (hook.min_samples, hook.k1, hook.k2, hook.eps) == (
        min_samples, clustering['k1'], clustering['k2'], clustering['eps'])

# Copyright (c) OpenMMLab. All rights reserved.
"""Every config under configs/ (except _base_) builds and runs one
iteration of ``loss`` and ``predict`` -- shrunk for CPU the way MMDetection
tests its configs (small backbone, narrow heads, few RoIs, tiny images, no
pretrained init)."""
import copy
import glob
import os.path as osp

import pytest
import torch

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
        boxes_in_original_pixels=True,
        use_box_type=True)
    with torch.no_grad():
        gallery, query = model.test_step(data)
    assert gallery.pred_instances.feats.shape[1] == 256
    assert query.pred_instances.feats.shape == (1, 256)


@pytest.mark.parametrize('fname,pos_iou', [('dicl_prw.py', 0.7),
                                           ('dicl_cuhk-sysu.py', 0.6)])
def test_reference_settings(fname, pos_iou):
    """The reference numbers in the GPU-scale configs."""
    cfg = get_config(fname)
    m = cfg.model
    assert m.type == 'DICL'
    assert m.backbone.depth == 50 and m.backbone.style == 'caffe'
    assert m.backbone.strides == (1, 2, 2, 1)
    assert m.backbone.out_indices == (1, 2, 3)
    assert m.backbone.frozen_stages == 1 and m.backbone.norm_eval
    assert m.backbone.norm_cfg.requires_grad is False
    assert m.backbone.init_cfg.type == 'Pretrained'
    assert not m.backbone.init_cfg.checkpoint.startswith(('http', 'open'))
    assert m.data_preprocessor.mean == [103.530, 116.280, 123.675]
    assert m.data_preprocessor.std == [1.0, 1.0, 1.0]
    assert m.data_preprocessor.bgr_to_rgb is False
    assert m.neck.type == 'C4C5FusionNeck' and m.neck.dcn
    anchors = m.rpn_head.anchor_generator
    assert anchors.scales == [2, 4, 8, 16, 32] and anchors.strides == [16]
    assert anchors.ratios == [1.0, 2.0, 3.0]
    roi = m.roi_head
    assert roi.bbox_roi_extractor.roi_layer == dict(
        type='DeformRoIPoolPack',
        output_size=(14, 6),
        output_channels=1024,
        sampling_ratio=0,
        gamma=0.1)
    assert m.data_preprocessor.pad_size_divisor == 32
    # inits: the components' defaults are the reference's
    assert 'init_cfg' not in roi.reid_head
    assert 'tower_init_cfg' not in roi.bbox_head
    assert 'init_cfg' not in m.neck and 'init_cfg' not in roi.shared_head
    assert m.train_cfg.rpn.allowed_border == 0
    assert m.train_cfg.rpn_proposal.min_bbox_size == 8
    assert m.test_cfg.rpn.min_bbox_size == 16
    assert roi.get('triplet_positives', 'mean') == 'mean'
    assert roi.bbox_roi_extractor.featmap_strides == [16]
    assert roi.bbox_head.conv_out_channels == (512, 512)
    assert roi.bbox_head.loss_bbox.loss_weight == 10.0
    assert roi.bbox_head.bbox_coder.target_stds == [0.1, 0.1, 0.2, 0.2]
    assert roi.reid_head.out_channels == 256
    assert m.crop_size == (224, 96)
    train = m.train_cfg
    assert train.rpn_proposal.nms_pre == 12000
    assert train.rpn_proposal.max_per_img == 2000
    assert train.rpn_proposal.nms.iou_threshold == 0.7
    assert train.rcnn.assigner.pos_iou_thr == pos_iou
    assert train.rcnn.assigner.min_pos_iou == pos_iou
    assert train.rcnn.assigner.neg_iou_thr == 0.1
    assert train.rcnn.sampler.num == 128
    assert train.rcnn.sampler.pos_fraction == 0.5
    assert train.rcnn.sampler.add_gt_as_proposals
    test = m.test_cfg
    assert (test.rpn.nms_pre, test.rpn.max_per_img) == (6000, 300)
    assert test.rcnn.score_thr == 0.05
    assert test.rcnn.nms.iou_threshold == 0.4
    assert test.rcnn.max_per_img == 100
    assert test.reid_mode == 'fused' and 'query_mode' not in test
    assert test.crop_box == 'proposal' and test.normalize_fused is False
    occlusion = [t for t in cfg.train_pipeline if t.type == 'BoxOcclusion']
    assert occlusion[0].get('mode', 'reference') == 'reference'
    opt = cfg.optim_wrapper
    assert opt.optimizer.lr == 0.001 and opt.optimizer.momentum == 0.9
    assert opt.optimizer.weight_decay == 5e-4
    assert opt.clip_grad.max_norm == 10
    warmup, steps = cfg.param_scheduler
    assert warmup.end == 2242 and warmup.start_factor == 1 / 200
    assert steps.milestones == [16, 22] and steps.gamma == 0.1
    assert cfg.train_cfg.max_epochs == 26
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.test_evaluator.type == 'PersonSearchMetric'


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


def test_the_assigner_ignores_between_the_thresholds():
    """MaxIoUAssigner as configured: >= 0.7 positive, < 0.1 negative, the
    rest ignored (-1), never sampled."""
    from mmengine.structures import InstanceData

    from mmps.registry import TASK_UTILS
    cfg = get_config('dicl_prw.py').model.train_cfg.rcnn.assigner
    assigner = TASK_UTILS.build(cfg)
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([0]))
    priors = torch.tensor([
        [0., 0., 10., 10.],  # IoU 1
        [0., 0., 10., 8.],  # 0.8
        [0., 0., 10., 5.],  # 0.5
        [0., 0., 10., 0.5],  # 0.05
        [20., 20., 30., 30.],  # 0
    ])
    res = assigner.assign(InstanceData(priors=priors), gt)
    assert res.gt_inds.tolist() == [1, 1, -1, 0, 0]


REF_CLUSTERING = dict(k1=30, k2=6, eps=(0.68, 0.70, 0.72))
# the synthetic sets have ~11 boxes per identity against ~37 (see the configs)
SYN_CLUSTERING = dict(k1=10, k2=6, eps=(0.58, 0.60, 0.62))


@pytest.mark.parametrize('fname,min_samples,crop_size,clustering', [
    ('dicl_prw.py', 4, (224, 96), REF_CLUSTERING),
    ('dicl_cuhk-sysu.py', 2, (224, 96), REF_CLUSTERING),
    ('dicl_synthetic_prw.py', 4, (224, 96), SYN_CLUSTERING),
    ('dicl_synthetic_cuhk-sysu.py', 2, (224, 96), SYN_CLUSTERING)
])
def test_dicl_training_settings(fname, min_samples, crop_size, clustering):
    """DICL's training settings in the reference and the CPU configs alike."""
    cfg = get_config(fname)
    m = cfg.model
    assert m.data_preprocessor.type == 'PersonSearchDataPreprocessor'
    roi = m.roi_head
    assert roi.type == 'DICLRoIHead' and roi.label_source == 'cluster'
    assert roi.memory == dict(
        type='InstanceMemory', feat_dim=256, momentum=0.2)
    assert (roi.loss_id.temperature, roi.loss_id.top_percent,
            roi.loss_id.loss_weight) == (0.05, 0.6, 1.0)
    assert roi.loss_sim.loss_weight == 1.0
    assert (roi.loss_kl.loss_weight, roi.loss_kl.temperature,
            roi.loss_kl.reduction) == (0.1, 1.0, 'mean')
    assert (roi.loss_triplet.margin, roi.loss_triplet.bg_weight) == (0.3,
                                                                     0.25)
    steps = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    flip = steps.index('RandomFlip')
    assert steps[flip + 1:flip + 4] == [
        'InstanceViews', 'BoxOcclusion', 'PackPersonSearchInputs'
    ]
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert pipeline[flip + 1].crop_size == m.crop_size == crop_size
    # crops are RoI size x stride 16
    roi_size = m.roi_head.bbox_roi_extractor.roi_layer.output_size
    assert tuple(roi_size) == (crop_size[0] // 16, crop_size[1] // 16)
    assert tuple(m.roi_head.reid_head.roi_size) == tuple(roi_size)
    assert (pipeline[flip + 2].grid, pipeline[flip + 2].num_cells,
            pipeline[flip + 2].prob) == ((14, 6), 2, 0.5)
    hooks = {h.type: h for h in cfg.custom_hooks}
    assert set(hooks) == {'InstanceMemoryInitHook', 'PseudoLabelHook'}
    assert hooks['PseudoLabelHook'].min_samples == min_samples
    from mmps.engine.hooks import PseudoLabelHook
    hook = PseudoLabelHook(**{
        k: v
        for k, v in hooks['PseudoLabelHook'].items() if k != 'type'
    })
    assert (hook.k1, hook.k2, hook.eps) == (clustering['k1'],
                                            clustering['k2'],
                                            clustering['eps'])

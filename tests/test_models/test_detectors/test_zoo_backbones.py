# Copyright (c) OpenMMLab. All rights reserved.
"""DICL with other zoo backbones (configs/dicl/: ResNet-101, ResNeXt-101,
Swin-T, MMPretrain's ConvNeXt-T).

Each config is checked twice: full size (the channels of the config's
backbone reach every head, the instance crop gives the RoI-sized map) and
shrunk for CPU (one training iteration with instance views, and ``predict``
for a gallery image and a query). The MMPretrain config skips where
MMPretrain (which needs torchvision) is not installed.
"""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.optim import build_optim_wrapper

from mmps.registry import MODELS
from mmps.testing import (demo_person_search_inputs, get_config,
                          prepare_instance_memory, use_roi_align_without_cuda)


def _with_mmpretrain() -> bool:
    """A real import of mmpretrain's models (it half-imports without
    torchvision, so torchvision goes first and the registry is checked)."""
    try:
        import torchvision  # noqa: F401

        import mmpretrain.models  # noqa: F401
        from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    except (ImportError, OSError, RuntimeError):  # absent or broken
        return False
    return PRETRAIN_MODELS.get('ConvNeXt') is not None


needs_mmpretrain = pytest.mark.skipif(
    not _with_mmpretrain(),
    reason='mmpretrain (an optional extra; needs torchvision) not installed')

# config, (C4, C5) of its backbone, small sizes of the same backbone type
# (merged into its config) and their (C4, C5)
ZOO = [
    pytest.param(
        'dicl/dicl_r101-c4_1xb4-26e_prw.py', (1024, 2048),
        dict(base_channels=4), (64, 128),
        id='r101'),
    pytest.param(
        'dicl/dicl_x101-32x4d-c4_1xb4-26e_prw.py', (1024, 2048),
        dict(base_channels=4, groups=2, base_width=2), (64, 128),
        id='x101-32x4d'),
    pytest.param(
        'dicl/dicl_swin-t-c4_1xb4-26e_prw.py', (384, 768),
        dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)),
        (32, 64),
        id='swin-t'),
    pytest.param(
        'dicl/dicl_mmpretrain-convnext-t-c4_1xb4-26e_prw.py', (384, 768),
        dict(arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64])),
        (32, 64),
        id='mmpretrain-convnext-t',
        marks=needs_mmpretrain),
]
# shrunk here by their own backbone's sizes, not by test_configs.py
ZOO_CONFIGS = [param.values[0] for param in ZOO]


def _set_channels(model: ConfigDict, c4: int, c5: int) -> None:
    """Every channel count after the backbone, from its (C4, C5)."""
    model.neck.update(in_channels=(c4, c5), out_channels=c4)
    model.rpn_head.update(in_channels=c4, feat_channels=c4)
    roi = model.roi_head
    roi.bbox_roi_extractor.out_channels = c4
    roi.shared_head.in_channels = c4
    roi.bbox_head.in_channels = c4
    roi.reid_head.in_channels = c4


def _shrink(model: ConfigDict, backbone: dict, channels: tuple) -> ConfigDict:
    """The config's structure at CPU size, as ``shrink_person_search_cfg``
    does for ResNets, for any backbone: its own small sizes (``backbone``),
    no pretrained init, narrow towers, 7x3 RoIs / 112x48 crops, few
    proposals and RoIs."""
    model.backbone.update(init_cfg=None, **backbone)
    _set_channels(model, *channels)
    roi = model.roi_head
    roi_size, model.crop_size = (7, 3), (112, 48)
    roi.bbox_roi_extractor.roi_layer.output_size = roi_size
    roi.bbox_head.update(roi_feat_size=roi_size, conv_out_channels=(8, 8))
    roi.reid_head.roi_size = roi_size
    train = model.train_cfg
    train.rpn.sampler.num = 64
    train.rpn_proposal.update(nms_pre=256, max_per_img=64)
    train.rcnn.sampler.num = 16
    model.test_cfg.rpn.update(nms_pre=256, max_per_img=64)
    model.test_cfg.rcnn.max_per_img = 16
    return model


def _with_views(model, data):
    """uint8 instance views of every GT box (as ``InstanceViews`` packs)."""
    gen = torch.Generator().manual_seed(0)
    for sample in data['data_samples']:
        sample.gt_instances.crops = torch.randint(
            0,
            256, (len(sample.gt_instances), 3, *model.crop_size),
            generator=gen,
            dtype=torch.uint8)
    return data


@pytest.mark.parametrize('fname,channels,small,small_channels', ZOO)
def test_full_size_config_builds_with_its_channels(fname, channels, small,
                                                   small_channels):
    cfg = get_config(fname)
    backbone = cfg.model.backbone
    # nothing downloads at run time: a local ImageNet checkpoint
    assert backbone.init_cfg.type == 'Pretrained'
    assert backbone.init_cfg.checkpoint.startswith('checkpoints/')
    # the reference's deformable RoI pool takes C4's channels
    assert cfg.model.roi_head.bbox_roi_extractor.roi_layer.type == \
        'DeformRoIPoolPack'
    assert cfg.model.roi_head.bbox_roi_extractor.roi_layer.output_channels \
        == channels[0]
    model_cfg = use_roi_align_without_cuda(copy.deepcopy(cfg.model))
    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg).eval()
    c4, c5 = channels
    assert model.neck.in_channels == (c4, c5)
    assert model.neck.out_channels == c4
    assert model.roi_head.shared_head.in_channels == c4
    assert model.roi_head.reid_head.in_channels == c4
    # the config's optimiser (AdamW with paramwise_cfg for Swin) builds
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    assert type(optim.optimizer).__name__ == cfg.optim_wrapper.optimizer.type

    # an instance crop: the backbone's C4 / C5 reach the neck at the RoI
    # size (stride 16), and the crop embeds
    crop = torch.randn(1, 3, *model.crop_size)
    with torch.no_grad():
        outs = model.backbone(crop)
        feat = model.neck(outs)[0]
        embed = model.embed_crops(crop)
    assert [o.size(1) for o in outs[-2:]] == [c4, c5]
    roi_size = tuple(model.roi_head.reid_head.roi_size)
    assert feat.shape == (1, c4, *roi_size)
    assert embed.shape == (1, model.roi_head.embed_dim)


@pytest.mark.parametrize('fname,channels,small,small_channels', ZOO)
def test_shrunk_config_trains_and_predicts(fname, channels, small,
                                           small_channels):
    cfg = get_config(fname)
    model = MODELS.build(
        _shrink(
            use_roi_align_without_cuda(copy.deepcopy(cfg.model)), small,
            small_channels))
    model.init_weights()
    prepare_instance_memory(model)

    model.train()
    data = demo_person_search_inputs(
        2, (3, 128, 192), num_items=[2, 2], use_box_type=True)
    data = model.data_preprocessor(_with_views(model, data), True)
    losses = model(**data, mode='loss')
    assert {'loss_sim', 'loss_id'} <= set(losses)  # the instance branch ran
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)

    model.eval()
    data = demo_person_search_inputs(
        2, (3, 128, 192),
        is_query=[False, True],
        scale_factor=(0.5, 0.5),
        use_box_type=True)
    with torch.no_grad():
        gallery, query = model.test_step(data)
    assert gallery.pred_instances.feats.shape[1] == 256
    assert query.pred_instances.feats.shape == (1, 256)


def _shapes(module):
    return {k: v.shape for k, v in module.state_dict().items()}


def test_swin_stride16_c5_takes_the_imagenet_weights():
    """Swin-T with a stride-1 last patch merging: C5 at stride 16 and the
    parameters of the standard (stride-32) Swin-T, so its ImageNet
    checkpoint loads unchanged."""
    cfg = copy.deepcopy(
        get_config('dicl/dicl_swin-t-c4_1xb4-26e_prw.py').model.backbone)
    cfg.update(init_cfg=None, depths=(1, 1, 1, 1))  # shapes per block alike
    ours = MODELS.build(cfg)
    standard = MODELS.build(dict(cfg, strides=(4, 2, 2, 2)))
    assert _shapes(ours) == _shapes(standard)
    with torch.no_grad():
        c4, c5 = ours(torch.randn(1, 3, 64, 96))
    assert c4.shape == (1, 384, 4, 6) and c5.shape == (1, 768, 4, 6)

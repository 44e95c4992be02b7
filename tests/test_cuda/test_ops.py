# Copyright (c) OpenMMLab. All rights reserved.
"""The reference's CUDA-only layers, forward and backward.

mmcv's ``DeformRoIPoolPack`` (the reference RoI pool: 14x6,
``sampling_ratio=0``, ``gamma=0.1``) has no CPU kernel; its deformable bins
are pinned against ``RoIAlign`` (aligned) on CUDA: with the offsets at their
zero init it is exactly RoIAlign, and a constant offset ``b`` is RoIAlign of
the box shifted by ``gamma * b * size``. The DCNs (neck, head) agree between
their CUDA and CPU kernels, values and gradients.
"""
import pytest
import torch
from mmcv.ops import DeformRoIPoolPack, RoIAlign

from mmps.models.layers import build_conv_or_dcn
from mmps.registry import MODELS
from .utils import CUDA_ONLY, reference_cfg

pytestmark = CUDA_ONLY

OUT = (14, 6)
SCALE = 1 / 16


def _feats_and_rois(channels=1024, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, channels, 38, 63, generator=gen).cuda()
    rois = torch.tensor([[0, 100., 80., 180., 320.], [0, 500., 20., 560., 200.],
                         [1, 10., 10., 90., 250.], [1, 700., 300., 980., 590.]
                         ]).cuda()
    return feats.requires_grad_(), rois


def _reference_pool():
    layer_cfg = reference_cfg().model.roi_head.bbox_roi_extractor.roi_layer
    assert layer_cfg.type == 'DeformRoIPoolPack'
    assert (tuple(layer_cfg.output_size), layer_cfg.sampling_ratio,
            layer_cfg.gamma, layer_cfg.output_channels) == (OUT, 0, 0.1, 1024)
    return DeformRoIPoolPack(
        output_size=OUT, output_channels=1024, sampling_ratio=0, gamma=0.1,
        spatial_scale=SCALE).cuda()


def test_deform_roi_pool_at_zero_offsets_is_roi_align():
    pool = _reference_pool()
    feats, rois = _feats_and_rois()
    out = pool(feats, rois)
    assert out.shape == (4, 1024) + OUT
    expected = RoIAlign(OUT, SCALE, sampling_ratio=0, aligned=True)(feats,
                                                                    rois)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_deform_roi_pool_offsets_shift_the_bins_and_get_gradients():
    pool = _reference_pool()
    bins = OUT[0] * OUT[1]
    with torch.no_grad():
        pool.offset_fc[-1].bias[:bins] = 0.3  # x, in units of the box width
        pool.offset_fc[-1].bias[bins:] = -0.2  # y, in box heights
    feats, rois = _feats_and_rois()
    out = pool(feats, rois)
    w = rois[:, 3] - rois[:, 1]
    h = rois[:, 4] - rois[:, 2]
    shift = torch.stack([0.1 * 0.3 * w, 0.1 * -0.2 * h], 1).repeat(1, 2)
    shifted = torch.cat([rois[:, :1], rois[:, 1:] + shift], 1)
    expected = RoIAlign(OUT, SCALE, sampling_ratio=0, aligned=True)(feats,
                                                                    shifted)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)

    out.square().sum().backward()
    assert torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    last = pool.offset_fc[-1]
    assert torch.isfinite(last.weight.grad).all()
    assert last.weight.grad.abs().sum() > 0  # the offsets are learned


@pytest.mark.parametrize('where', ['neck', 'head'])
def test_dcn_cuda_equals_cpu_forward_and_backward(where):
    torch.manual_seed(0)
    # the reference's DCNs: neck 3x3 (1024 -> 1024 at C4/C5), head 3x3
    dcn = build_conv_or_dcn(64, 32, 3, dcn=True)
    with torch.no_grad():  # non-zero offsets: the deformable sampling runs
        dcn.conv_offset.weight.normal_(0, 0.05)
        dcn.conv_offset.bias.normal_(0, 0.5)
    shape = (2, 64, 19, 31) if where == 'neck' else (7, 64, 14, 6)
    x = torch.randn(*shape)
    grads = {}
    outs = {}
    for device in ('cpu', 'cuda'):
        layer = dcn.to(device)
        layer.zero_grad()
        xi = x.to(device).requires_grad_()
        out = layer(xi)
        out.square().sum().backward()
        outs[device] = out.detach().cpu()
        grads[device] = (xi.grad.cpu(), layer.weight.grad.cpu(),
                         layer.conv_offset.weight.grad.cpu())
    torch.testing.assert_close(outs['cuda'], outs['cpu'], atol=1e-4,
                               rtol=1e-4)
    for g_cuda, g_cpu in zip(grads['cuda'], grads['cpu']):
        assert g_cpu.abs().sum() > 0
        torch.testing.assert_close(g_cuda, g_cpu, atol=1e-3, rtol=1e-3)


def test_reference_model_builds_on_cuda_with_its_deformable_layers():
    model = MODELS.build(reference_cfg().model).cuda()
    kinds = {type(m).__name__ for m in model.modules()}
    assert {'DeformRoIPoolPack', 'AnyBatchDeformConv2dPack'} <= kinds

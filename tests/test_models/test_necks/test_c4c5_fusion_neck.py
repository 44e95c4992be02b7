# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmps.models.necks import C4C5FusionNeck
from mmps.registry import MODELS


def _inputs(n=2, h=6, w=5):
    return (torch.randn(n, 4, 2 * h,
                        2 * w), torch.randn(n, 8, h,
                                            w), torch.randn(n, 16, h, w))


def test_shapes_and_registry():
    neck = MODELS.build(
        dict(type='C4C5FusionNeck', in_channels=(8, 16), out_channels=8))
    outs = neck(_inputs())  # C3, C4, C5: uses the last two
    assert isinstance(outs, tuple) and len(outs) == 1
    assert outs[0].shape == (2, 8, 6, 5)


def test_dcn_with_zero_offsets_equals_plain_computation():
    neck = C4C5FusionNeck(in_channels=(8, 16), out_channels=8, dcn=True)
    _, c4, c5 = _inputs()
    r = c4 + F.conv2d(c5, neck.lateral_conv.weight)
    ref = F.conv2d(r, neck.fusion_conv.weight, padding=1) + r
    out = neck((c4, c5))[0]
    assert torch.allclose(out, ref, atol=1e-5)

    # the same computation with plain convolutions and the same weights
    plain = C4C5FusionNeck(in_channels=(8, 16), out_channels=8, dcn=False)
    assert type(plain.fusion_conv) is nn.Conv2d
    missing, unexpected = plain.load_state_dict(
        neck.state_dict(), strict=False)
    assert not missing and all('conv_offset' in k for k in unexpected)
    assert torch.allclose(plain((c4, c5))[0], out, atol=1e-5)


def test_offsets_are_trained():
    neck = C4C5FusionNeck(in_channels=(8, 16), out_channels=8)
    neck((_inputs()[1:]))[0].pow(2).sum().backward()
    for conv in (neck.lateral_conv, neck.fusion_conv):
        assert conv.weight.grad is not None
        assert conv.conv_offset.weight.grad is not None


def test_bad_configs_fail_loudly():
    with pytest.raises(ValueError, match='out_channels must be 8'):
        C4C5FusionNeck(in_channels=(8, 16), out_channels=4)
    with pytest.raises(ValueError, match='C4 and C5'):
        C4C5FusionNeck(in_channels=(4, 8, 16), out_channels=8)
    neck = C4C5FusionNeck(in_channels=(8, 16), out_channels=8)
    with pytest.raises(ValueError, match='strides=\\(1, 2, 2, 1\\)'):
        neck((torch.randn(1, 8, 6, 6), torch.randn(1, 16, 3, 3)))


@pytest.mark.parametrize('c4_size,c5_size', [((6, 5), (3, 3)),
                                             ((7, 3), (3, 1))])
def test_upsample_cfg_resizes_a_coarser_c5(c4_size, c5_size):
    """A stride-32 C5 (e.g. mmpretrain's ConvNeXt, odd C4 sizes floored):
    the lateral output is resized to C4's size, as FPN's top-down path."""
    neck = C4C5FusionNeck(
        in_channels=(8, 16),
        out_channels=8,
        dcn=False,
        upsample_cfg=dict(mode='nearest'))
    c4, c5 = torch.randn(2, 8, *c4_size), torch.randn(2, 16, *c5_size)
    lat = F.interpolate(
        F.conv2d(c5, neck.lateral_conv.weight), size=c4_size, mode='nearest')
    r = c4 + lat
    ref = F.conv2d(r, neck.fusion_conv.weight, padding=1) + r
    out = neck((c4, c5))[0]
    assert out.shape == (2, 8, *c4_size)
    assert torch.allclose(out, ref, atol=1e-5)
    # C5 already at C4's size: upsample_cfg changes nothing
    same = torch.randn(2, 16, *c4_size)
    plain = C4C5FusionNeck(in_channels=(8, 16), out_channels=8, dcn=False)
    plain.load_state_dict(neck.state_dict())
    assert torch.allclose(neck((c4, same))[0], plain((c4, same))[0])

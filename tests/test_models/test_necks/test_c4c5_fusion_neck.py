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

# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmps.models.layers import AnyBatchDeformConv2dPack, build_conv_or_dcn


def test_zero_offsets_equal_plain_convolution():
    dcn = AnyBatchDeformConv2dPack(4, 6, 3, padding=1)
    x = torch.randn(3, 4, 7, 5)
    ref = F.conv2d(x, dcn.weight, padding=1)
    assert torch.allclose(dcn(x), ref, atol=1e-5)


def test_any_batch_size_matches_per_sample():
    # mmcv asserts batch % im2col_step == 0; 37 = 32 + 5
    dcn = AnyBatchDeformConv2dPack(4, 4, 3, padding=1, im2col_step=32)
    nn.init.normal_(dcn.conv_offset.weight, std=0.3)  # real offsets
    x = torch.randn(37, 4, 6, 5, requires_grad=True)
    out = dcn(x)
    assert out.shape == (37, 4, 6, 5)
    for i in (0, 31, 32, 36):
        assert torch.allclose(out[i:i + 1], dcn(x[i:i + 1]), atol=1e-5)
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert dcn.conv_offset.weight.grad.abs().sum() > 0


def test_empty_batch_keeps_graph():
    dcn = AnyBatchDeformConv2dPack(4, 6, 3, padding=1)
    out = dcn(torch.zeros(0, 4, 7, 5))
    assert out.shape == (0, 6, 7, 5)
    out.sum().backward()
    assert dcn.weight.grad is not None
    assert dcn.conv_offset.weight.grad is not None


def test_build_conv_or_dcn():
    dcn = build_conv_or_dcn(4, 6, 3)
    conv = build_conv_or_dcn(4, 6, 3, dcn=False)
    assert isinstance(dcn, AnyBatchDeformConv2dPack)
    assert type(conv) is nn.Conv2d and conv.bias is None
    assert conv.padding == (1, 1)
    conv.weight.data.copy_(dcn.weight.data)
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(dcn(x), conv(x), atol=1e-5)

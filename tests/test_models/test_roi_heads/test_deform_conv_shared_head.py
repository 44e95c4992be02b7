# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn.functional as F

from mmps.models.layers import AnyBatchDeformConv2dPack
from mmps.registry import MODELS


def test_one_3x3_dcn_same_channels():
    head = MODELS.build(dict(type='DeformConvSharedHead', in_channels=8))
    assert isinstance(head.conv, AnyBatchDeformConv2dPack)
    assert head.conv.kernel_size == (3, 3) and head.out_channels == 8
    x = torch.randn(33, 8, 14, 6)  # not a multiple of im2col_step
    out = head(x)
    assert out.shape == x.shape
    # zero-initialised offsets: the plain 3x3 convolution
    assert torch.allclose(
        out, F.conv2d(x, head.conv.weight, padding=1), atol=1e-5)
    assert head(x[:0]).shape == (0, 8, 14, 6)


def test_plain_variant():
    head = MODELS.build(
        dict(type='DeformConvSharedHead', in_channels=8, dcn=False))
    assert type(head.conv) is torch.nn.Conv2d
    assert head(torch.randn(2, 8, 14, 6)).shape == (2, 8, 14, 6)

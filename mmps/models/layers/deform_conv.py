# Copyright (c) OpenMMLab. All rights reserved.
import math
from typing import Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import DeformConv2dPack
from torch import Tensor


#: The reference's DCN weight init as an ``init_cfg``: U(+-1/sqrt(fan_in)),
#: i.e. PyTorch's default convolution init (kaiming-uniform with a = sqrt(5)),
#: which is what ``DeformConv2d.reset_parameters`` of mmcv 1.x did; mmcv 2.x
#: kaiming-initialises it for ReLU instead (sqrt(6) = 2.45x wider).
DCN_REFERENCE_INIT = dict(
    type='Kaiming',
    # mmengine matches a layer by its class name and its direct bases' names
    layer=['DeformConv2d', 'DeformConv2dPack', 'AnyBatchDeformConv2dPack'],
    a=math.sqrt(5),
    mode='fan_in',
    nonlinearity='leaky_relu',
    distribution='uniform')


class AnyBatchDeformConv2dPack(DeformConv2dPack):
    """``mmcv.ops.DeformConv2dPack`` that accepts any batch size.

    mmcv's kernel processes the batch in blocks of ``im2col_step`` samples
    and asserts that the batch size is a multiple of the block (a batch of
    RoIs or crops rarely is), and it rejects an empty batch. This wrapper
    runs the largest multiple of the block and then the remainder as a
    second call, and maps an empty batch through an ordinary convolution
    (equal to the deformable one at zero offsets), keeping every parameter
    in the graph.

    The offsets are zero-initialised by mmcv (``init_offset``), so at
    initialisation the layer computes the plain convolution with ``weight``.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        """Deformable convolution of ``x`` (N, C, H, W) for any N >= 0."""
        num = x.size(0)
        if num == 0:
            offset = self.conv_offset(x)
            out = F.conv2d(x, self.weight, None, self.stride, self.padding,
                           self.dilation, self.groups)
            return out + 0. * offset.sum()
        step = self.im2col_step
        rest = num % step if num > step else 0
        if rest == 0:
            return super().forward(x)
        head, tail = x[:num - rest], x[num - rest:]
        return torch.cat([super().forward(head), super().forward(tail)])


def build_conv_or_dcn(in_channels: int,
                      out_channels: int,
                      kernel_size: int,
                      dcn: bool = True,
                      **kwargs) -> Union[nn.Conv2d, AnyBatchDeformConv2dPack]:
    """A bias-free ``kernel_size`` convolution, deformable or plain.

    ``padding`` defaults to ``kernel_size // 2`` (same size). Both kinds have
    the same ``weight`` and no bias, so a deformable layer with zero offsets
    and a plain one with the same weight compute the same thing.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Square kernel size.
        dcn (bool): ``mmcv.ops.DeformConv2dPack`` (True) or ``nn.Conv2d``.
            Defaults to True.
        **kwargs: ``stride``, ``padding``, ``dilation``, ``groups`` (and
            ``deform_groups`` for the deformable layer).

    Returns:
        nn.Module: The layer.
    """
    kwargs.setdefault('padding', kernel_size // 2)
    if dcn:
        return AnyBatchDeformConv2dPack(
            in_channels, out_channels, kernel_size, bias=False, **kwargs)
    kwargs.pop('deform_groups', None)
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, bias=False, **kwargs)

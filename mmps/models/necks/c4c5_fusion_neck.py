# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Tuple

import torch.nn.functional as F
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmps.registry import MODELS
from ..layers import DCN_REFERENCE_INIT, build_conv_or_dcn


@MODELS.register_module()
class C4C5FusionNeck(BaseModule):
    """Fuse the stride-16 C4 and C5 maps of a dilated-last-stage ResNet.

    DICL's neck (not an FPN): with a backbone whose last stage keeps stride
    16 (ResNet ``strides=(1, 2, 2, 1)``), C4 and C5 have the same size and

    .. code:: text

        lat = DCN1x1(C5)          # in_channels[1] -> out_channels
        r   = C4 + lat
        out = DCN3x3(r) + r       # no norm, no activation

    where DCN is ``mmcv.ops.DeformConv2dPack`` (no bias) or a plain
    bias-free convolution when ``dcn=False``.

    Initialisation (the reference's): every ``nn.Conv2d`` inside the neck is
    Xavier-uniform initialised, *including the DCNs' offset convolutions*,
    so the neck's DCN offsets start non-zero; the DCN weights are
    U(+-1/sqrt(fan_in)) (:data:`~mmps.models.layers.DCN_REFERENCE_INIT`, the
    init of the reference's mmcv 1.x). ``init_cfg=None`` keeps mmcv 2.x's
    (zero offsets, kaiming weights).

    Any backbone fits: the channels come from ``in_channels``, and a backbone
    whose last stage cannot keep stride 16 (e.g. ``mmpretrain.ConvNeXt``)
    gives a stride-32 C5 that ``upsample_cfg`` resizes to C4's size after
    the lateral convolution, as mmdet's ``FPN`` does its top-down path
    (``lat = resize(DCN1x1(C5), size(C4))``).

    Args:
        in_channels (Sequence[int]): Channels of C4 and C5.
            Defaults to (1024, 2048).
        out_channels (int): Output channels; must equal the C4 channels
            (C4 is added unchanged). Defaults to 1024.
        dcn (bool): Deformable (True) or plain convolutions.
            Defaults to True.
        upsample_cfg (dict, optional): ``F.interpolate`` arguments (other
            than ``size``) that resize the lateral output of a C5 smaller
            than C4 to C4's size, e.g. ``dict(mode='nearest')``. None (the
            reference) requires C4 and C5 of the same size.
            Defaults to None.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to ``dict(type='Xavier', layer='Conv2d',
            distribution='uniform')`` (offsets included) plus
            ``DCN_REFERENCE_INIT``: the reference's.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (1024, 2048),
                 out_channels: int = 1024,
                 dcn: bool = True,
                 upsample_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = (
                     dict(type='Xavier', layer='Conv2d',
                          distribution='uniform'), DCN_REFERENCE_INIT)
                 ) -> None:
        if isinstance(init_cfg, tuple):  # BaseModule takes a dict or list
            init_cfg = list(init_cfg)
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 2:
            raise ValueError('C4C5FusionNeck takes the C4 and C5 channels, '
                             f'got in_channels={in_channels}')
        if in_channels[0] != out_channels:
            raise ValueError(
                f'C4C5FusionNeck adds C4 ({in_channels[0]} channels) to the '
                f'lateral output: out_channels must be {in_channels[0]}, '
                f'got {out_channels}')
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.dcn = dcn
        self.upsample_cfg = None if upsample_cfg is None else dict(
            upsample_cfg)
        self.lateral_conv = build_conv_or_dcn(
            in_channels[1], out_channels, 1, dcn=dcn)
        self.fusion_conv = build_conv_or_dcn(
            out_channels, out_channels, 3, dcn=dcn)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor]:
        """Fuse the last two backbone outputs.

        Args:
            inputs (Sequence[Tensor]): Backbone outputs; the last two are C4
                (N, in_channels[0], H, W) and C5 (N, in_channels[1], H, W),
                or C5 of any size with ``upsample_cfg``.

        Returns:
            tuple[Tensor]: One map (N, out_channels, H, W).
        """
        c4, c5 = inputs[-2], inputs[-1]
        size = c4.shape[-2:]
        if self.upsample_cfg is None and c5.shape[-2:] != size:
            raise ValueError(
                f'C4 {tuple(c4.shape)} and C5 {tuple(c5.shape)} must have the '
                'same size: use a backbone with strides=(1, 2, 2, 1), or '
                "set upsample_cfg (e.g. dict(mode='nearest'))")
        lateral = self.lateral_conv(c5)
        if lateral.shape[-2:] != size:
            lateral = F.interpolate(lateral, size=size, **self.upsample_cfg)
        fused = c4 + lateral
        return (self.fusion_conv(fused) + fused, )

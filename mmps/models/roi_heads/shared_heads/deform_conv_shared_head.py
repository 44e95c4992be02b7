# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmps.registry import MODELS
from ...layers import DCN_REFERENCE_INIT, build_conv_or_dcn


@MODELS.register_module()
class DeformConvSharedHead(BaseModule):
    """One deformable 3x3 convolution on every RoI feature (DICL's head DCN).

    Used as ``shared_head`` of a :class:`~mmdet.models.StandardRoIHead`: its
    output feeds the box head and the re-id head, and it is what
    ``_bbox_forward`` returns as ``bbox_feats``. The instance (crop) branch
    runs it too, so scene RoIs and crops share it.

    Args:
        in_channels (int): RoI feature channels. Defaults to 1024.
        out_channels (int, optional): Output channels; None keeps
            ``in_channels``. Defaults to None.
        kernel_size (int): Kernel size (same padding). Defaults to 3.
        dcn (bool): ``mmcv.ops.DeformConv2dPack`` (True) or a plain
            convolution. Both are bias-free. Defaults to True.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to ``DCN_REFERENCE_INIT``: the DCN weight
            U(+-1/sqrt(fan_in)) as the reference's mmcv 1.x, offsets
            zero-initialised (mmcv's ``init_offset``), as there. None keeps
            mmcv 2.x's kaiming weight init.
    """

    def __init__(self,
                 in_channels: int = 1024,
                 out_channels: Optional[int] = None,
                 kernel_size: int = 3,
                 dcn: bool = True,
                 init_cfg: OptMultiConfig = DCN_REFERENCE_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.conv = build_conv_or_dcn(
            in_channels, self.out_channels, kernel_size, dcn=dcn)

    def forward(self, x: Tensor) -> Tensor:
        """RoI features (N, C, h, w) -> (N, out_channels, h, w), any N."""
        return self.conv(x)

# Copyright (c) OpenMMLab. All rights reserved.
from typing import Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.utils import _pair

from mmps.registry import MODELS


@MODELS.register_module()
class ReIDEmbeddingHead(BaseModule):
    """Re-id embedding of a RoI feature: flatten -> Linear -> L2-normalise.

    DICL's embedding (256-d) of the head-DCN output, shared by the scene
    RoIs and the instance crops.

    Args:
        in_channels (int): RoI feature channels. Defaults to 1024.
        roi_size (int or tuple[int]): RoI feature size (h, w).
            Defaults to (14, 6).
        out_channels (int): Embedding dimension. Defaults to 256.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None: PyTorch's own ``nn.Linear`` initialisation
            (weights and bias ~ U(+-1/sqrt(fan_in)), std ~0.002 for the
            86016 -> 256 layer), never re-initialised, as in the reference.
            ``dict(type='Normal', std=0.01, bias=0., layer='Linear')`` is
            mmps's former default: with an L2-normalised output its 5x larger
            weights make every early SGD step turn the embedding ~26x less.
    """

    def __init__(self,
                 in_channels: int = 1024,
                 roi_size: Union[int, Tuple[int, int]] = (14, 6),
                 out_channels: int = 256,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.roi_size = _pair(roi_size)
        self.out_channels = out_channels
        self.fc = nn.Linear(in_channels * self.roi_size[0] * self.roi_size[1],
                            out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Embed RoI features.

        Args:
            x (Tensor): (N, in_channels, h, w) with (h, w) = ``roi_size``;
                N may be 0.

        Returns:
            Tensor: (N, out_channels) unit-norm embeddings.
        """
        if tuple(x.shape[1:]) != (self.in_channels, *self.roi_size):
            raise ValueError(
                f'ReIDEmbeddingHead expects (N, {self.in_channels}, '
                f'{self.roi_size[0]}, {self.roi_size[1]}) features, got '
                f'{tuple(x.shape)}')
        return F.normalize(self.fc(x.flatten(1)), dim=1)

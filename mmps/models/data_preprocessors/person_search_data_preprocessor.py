# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from torch import Tensor

from mmps.registry import MODELS


@MODELS.register_module()
class PersonSearchDataPreprocessor(DetDataPreprocessor):
    """mmdet's detection preprocessing, plus the instance views.

    The scene images are normalised, channel-converted and padded exactly as
    by :class:`mmdet.models.data_preprocessors.DetDataPreprocessor`. The
    instance views packed by ``PackPersonSearchInputs`` as
    ``gt_instances.crops`` (N, C, h, w) uint8 (see ``InstanceViews``) get the
    same channel conversion and normalisation and become float tensors on
    the model's device; they all have the same size, so they need no
    padding. All arguments are those of ``DetDataPreprocessor``.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data=data, training=training)
        for sample in data['data_samples'] or []:
            for field in ('gt_instances', 'ignored_instances'):
                instances = sample.get(field, None)
                if instances is not None and 'crops' in instances:
                    instances.crops = self.preprocess_crops(instances.crops)
        return data

    def preprocess_crops(self, crops: Tensor) -> Tensor:
        """Channel conversion and normalisation of (N, C, h, w) crops.

        Args:
            crops (Tensor): uint8 (or float) crops of the original images.

        Returns:
            Tensor: float crops on the preprocessor's device.
        """
        device: Optional[torch.device] = self.mean.device \
            if self._enable_normalize else None
        crops = crops.to(device=device, dtype=torch.float32)
        if self._channel_conversion and crops.size(1) == 3:
            crops = crops[:, [2, 1, 0]]
        if self._enable_normalize:
            crops = (crops - self.mean) / self.std
        return crops

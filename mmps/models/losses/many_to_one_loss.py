# Copyright (c) OpenMMLab. All rights reserved.
import torch.nn as nn
from torch import Tensor

from mmps.registry import MODELS
from .utils import float32_forward


@MODELS.register_module()
class ManyToOneLoss(nn.Module):
    """Pull every positive proposal towards the crop of its GT box.

    DICL's ``loss_sim``: with ``p_i`` the scene embedding of positive
    proposal i and ``g_i`` the instance (crop) embedding of its GT box (one
    crop serves many proposals),

    .. code:: text

        loss = mean_i (1 - p_i . g_i)

    Both inputs receive gradients, as in the reference. The embeddings are
    expected to be L2-normalised already (they are not normalised here).

    Args:
        reduction (str): ``'mean'`` (the reference) or ``'sum'`` over the
            pairs. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if reduction not in ('mean', 'sum'):
            raise ValueError(f"reduction must be 'mean' or 'sum', got "
                             f'{reduction!r}')
        self.reduction = reduction
        self.loss_weight = float(loss_weight)

    @float32_forward
    def forward(self, scene_feats: Tensor, instance_feats: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            scene_feats (Tensor): (B, D) ``p_i``.
            instance_feats (Tensor): (B, D) ``g_i``, row i the crop of
                proposal i's GT box.

        Returns:
            Tensor: The weighted scalar loss (0, connected to both inputs,
            when B = 0).
        """
        if scene_feats.shape != instance_feats.shape:
            raise ValueError('scene and instance features must have the same '
                             f'shape, got {tuple(scene_feats.shape)} and '
                             f'{tuple(instance_feats.shape)}')
        cos = (scene_feats.float() * instance_feats.float()).sum(dim=-1)
        if cos.numel() == 0:
            return cos.sum() * 0.
        loss = 1. - cos
        loss = loss.mean() if self.reduction == 'mean' else loss.sum()
        return self.loss_weight * loss

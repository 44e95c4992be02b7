# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmps.registry import MODELS
from .utils import float32_forward


@MODELS.register_module()
class DenseSimilarityKLLoss(nn.Module):
    """Symmetric KL between the in-batch similarity distributions of the
    scene and the instance embeddings (DICL's dense loss ``loss_kl``).

    With P = [p_i] and G = [g_i] (rows in the same order),
    ``A = log_softmax(P P^T / T)`` and ``B = log_softmax(G G^T / T)``
    (row-wise),

    .. code:: text

        loss = KL(softmax B || softmax A) + KL(softmax A || softmax B)
             = sum over the B x B entries of (exp(B) - exp(A)) * (B - A),
               then reduced

    The reference (``F.kl_div(..., log_target=True)`` twice, default
    reduction) takes the element mean over the B x B matrix (``'mean'``),
    with T = 1, and detaches neither side; that makes the loss very small
    (about 1/B of ``'batchmean'``).

    Args:
        temperature (float): Temperature T of the similarities.
            Defaults to 1.0.
        reduction (str): ``'mean'`` (element mean, the reference),
            ``'batchmean'`` (sum / B, the KL divergence proper) or
            ``'sum'``. Defaults to 'mean'.
        detach (str, optional): Stop the gradient of one side: ``'scene'``
            (P) or ``'instance'`` (G). Defaults to None (both sides learn,
            as the reference).
        loss_weight (float): Weight of the loss. Defaults to 0.1.
    """

    def __init__(self,
                 temperature: float = 1.0,
                 reduction: str = 'mean',
                 detach: Optional[str] = None,
                 loss_weight: float = 0.1) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if reduction not in ('mean', 'batchmean', 'sum'):
            raise ValueError("reduction must be 'mean', 'batchmean' or "
                             f"'sum', got {reduction!r}")
        if detach not in (None, 'scene', 'instance'):
            raise ValueError("detach must be None, 'scene' or 'instance', "
                             f'got {detach!r}')
        self.temperature = float(temperature)
        self.reduction = reduction
        self.detach = detach
        self.loss_weight = float(loss_weight)

    @float32_forward
    def forward(self,
                scene_feats: Tensor,
                instance_feats: Tensor,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            scene_feats (Tensor): (B, D) scene embeddings P.
            instance_feats (Tensor): (B, D) instance embeddings G, row i for
                the same proposal as row i of P.
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The weighted scalar loss (0, connected to both inputs,
            when B < 2).
        """
        if scene_feats.shape != instance_feats.shape:
            raise ValueError('scene and instance features must have the same '
                             f'shape, got {tuple(scene_feats.shape)} and '
                             f'{tuple(instance_feats.shape)}')
        reduction = reduction_override or self.reduction
        if reduction not in ('mean', 'batchmean', 'sum'):
            raise ValueError(f'unknown reduction {reduction!r}')
        p, g = scene_feats.float(), instance_feats.float()
        num = p.size(0)
        if num < 2:
            return (p.sum() + g.sum()) * 0.
        if self.detach == 'scene':
            p = p.detach()
        elif self.detach == 'instance':
            g = g.detach()
        log_p = F.log_softmax(p @ p.t() / self.temperature, dim=1)
        log_g = F.log_softmax(g @ g.t() / self.temperature, dim=1)
        kl = (F.kl_div(log_p, log_g, reduction='sum', log_target=True) +
              F.kl_div(log_g, log_p, reduction='sum', log_target=True))
        if reduction == 'mean':
            kl = kl / (num * num)
        elif reduction == 'batchmean':
            kl = kl / num
        return self.loss_weight * kl

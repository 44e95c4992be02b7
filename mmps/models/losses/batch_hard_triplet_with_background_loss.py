# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn as nn
from torch import Tensor

from mmps.registry import MODELS
from .utils import float32_forward


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise distances as the reference computes them:
    ``sqrt(clamp(|x|^2 + |y|^2 - 2 x.y, 1e-12))`` (so d(x, x) = 1e-6)."""
    sq = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0)
    return (sq - 2 * x @ y.t()).clamp(min=1e-12).sqrt()


@MODELS.register_module()
class BatchHardTripletWithBackgroundLoss(nn.Module):
    """Batch-hard triplet loss on cluster labels plus a foreground-versus-
    background term (DICL's ``Quaduplet2Loss``).

    RoIs with a label < 0 are background; the others are foreground with
    their cluster label. With d the Euclidean distance (computed as in the
    reference, so a point's distance to itself is 1e-6), for every
    foreground anchor i:

    .. code:: text

        triplet_i = max(0, max_{j fg, y_j = y_i} d(i, j)
                           - min_{j fg, y_j != y_i} d(i, j) + margin)
        bg_i      = max(0, max_{j fg} d(i, j)          # any foreground,
                           - min_{k bg} d(i, k) + margin)   # any identity
        loss = mean_i triplet_i + bg_weight * mean_i bg_i

    i.e. the background term asks every background RoI to be farther from an
    anchor than the farthest foreground RoI of *any* cluster (self included
    in the positives, as in the reference). The loss is 0 when the
    foreground has fewer than two distinct labels (the reference returns 0
    then, background or not), and the background term is 0 when there is no
    background RoI (the reference crashes there).

    Args:
        margin (float): Margin of both hinge terms. Defaults to 0.3.
        bg_weight (float): Weight of the background term. Defaults to 0.25.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 margin: float = 0.3,
                 bg_weight: float = 0.25,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.margin = float(margin)
        self.bg_weight = float(bg_weight)
        self.loss_weight = float(loss_weight)

    @float32_forward
    def forward(self, feats: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            feats (Tensor): (N, D) per-RoI features (DICL: the positives'
                features replaced by the fused ones).
            labels (Tensor): (N,) cluster label per RoI, negative for the
                background.

        Returns:
            Tensor: The weighted scalar loss (0, connected to ``feats``,
            without a valid triplet).
        """
        labels = labels.reshape(-1).to(feats.device)
        if labels.numel() != feats.size(0):
            raise ValueError(f'{feats.size(0)} features but {labels.numel()}'
                             ' labels')
        feats = feats.to(torch.promote_types(feats.dtype, torch.float32))
        fg = labels >= 0
        fg_labels = labels[fg]
        if fg_labels.unique().numel() < 2:
            return feats.sum() * 0.
        x = feats[fg]
        dist = _euclidean(x, x)
        same = fg_labels.unsqueeze(0) == fg_labels.unsqueeze(1)
        hardest_pos = dist.masked_fill(~same, float('-inf')).max(1).values
        hardest_neg = dist.masked_fill(same, float('inf')).min(1).values
        loss = (hardest_pos - hardest_neg + self.margin).clamp(min=0).mean()

        bg_feats = feats[~fg]
        if self.bg_weight != 0 and bg_feats.size(0) > 0:
            farthest_fg = dist.max(1).values
            nearest_bg = _euclidean(x, bg_feats).min(1).values
            loss_bg = (farthest_fg - nearest_bg + self.margin).clamp(min=0)
            loss = loss + self.bg_weight * loss_bg.mean()
        return self.loss_weight * loss

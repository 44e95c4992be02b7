# Copyright (c) OpenMMLab. All rights reserved.
import math
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmps.registry import MODELS
from ..reid.instance_memory import InstanceMemory, cluster_centroids
from .utils import float32_forward


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # half precision is computed in fp32 (as the reference's
    # ``custom_fwd(cast_inputs=torch.float32)``); fp64 stays fp64.
    return torch.promote_types(dtype, torch.float32)


@MODELS.register_module()
class ClusterMemoryContrastLoss(nn.Module):
    """Contrast against cluster centroids of an instance memory, keeping only
    the hardest negative clusters (DICL's ``loss_id``).

    For a feature f (L2-normalised here by default) with target cluster t,
    the score of cluster c is ``s_c = mean_{j in c}(f . M_j) / temperature``
    (a cluster label with no slot is ignored). Among the non-target clusters,
    with ``q_c = exp(s_c) / sum_neg exp(s)``, the ``q`` are sorted in
    descending order, the cut is where their cumulative sum is closest to
    ``top_percent`` (first such position), and the negatives with ``q_c`` at
    least the ``q`` at the cut are kept (ties with it included). Then

    .. code:: text

        loss = mean_i -log(e_t / (e_t + sum_kept e_c + eps) + eps)

    with ``e = exp(s)`` and ``eps = 1e-6`` as in the reference
    (``HybridMemoryMultiFocalPercent``), evaluated in log space so that it
    never overflows. The memory is a constant: the gradient flows into
    ``feats`` only. The memory update is not part of the loss (see
    :meth:`InstanceMemory.update`).

    Args:
        temperature (float): Temperature tau. Defaults to 0.05.
        top_percent (float): Share of the negatives' softmax mass to keep
            (the hard-negative fraction). Defaults to 0.6.
        eps (float): The reference's epsilon, in the denominator and inside
            the log. Defaults to 1e-6.
        normalize (bool): L2-normalise ``feats`` first, as the reference.
            Defaults to True.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 temperature: float = 0.05,
                 top_percent: float = 0.6,
                 eps: float = 1e-6,
                 normalize: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if eps <= 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        self.temperature = float(temperature)
        self.top_percent = float(top_percent)
        self.eps = float(eps)
        self.normalize = normalize
        self.loss_weight = float(loss_weight)

    @float32_forward
    def forward(self,
                feats: Tensor,
                targets: Tensor,
                memory_feats: Union[Tensor, InstanceMemory],
                memory_labels: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            feats (Tensor): (B, D) features of the positives (the fused f_i).
            targets (Tensor): (B,) target cluster of each feature (the label
                of its memory slot).
            memory_feats (Tensor | InstanceMemory): (N, D) memory features,
                or an :class:`InstanceMemory` (then ``memory_labels`` is taken
                from it).
            memory_labels (Tensor, optional): (N,) cluster label per slot.

        Returns:
            Tensor: The weighted scalar loss (0, connected to ``feats``, when
            B = 0).
        """
        if isinstance(memory_feats, InstanceMemory):
            if memory_labels is not None:
                raise ValueError('give memory_labels only with a tensor of '
                                 'memory features')
            memory_feats, memory_labels = (memory_feats.features,
                                           memory_feats.labels)
        elif memory_labels is None:
            raise ValueError('memory_labels is required with a tensor of '
                             'memory features')
        if feats.dim() != 2:
            raise ValueError(f'feats must be (B, D), got {tuple(feats.shape)}')
        targets = targets.reshape(-1).long().to(feats.device)
        if targets.numel() != feats.size(0):
            raise ValueError(f'{feats.size(0)} features but '
                             f'{targets.numel()} targets')
        dtype = _compute_dtype(feats.dtype)
        if feats.size(0) == 0:
            return feats.sum().to(dtype) * 0.

        with torch.no_grad():
            centroids, counts = cluster_centroids(
                memory_feats.detach().to(device=feats.device, dtype=dtype),
                memory_labels.to(feats.device))
        num_clusters = centroids.size(0)
        if int(targets.min()) < 0 or int(targets.max()) >= num_clusters:
            raise ValueError(
                f'targets must be cluster labels in [0, {num_clusters}), got '
                f'[{int(targets.min())}, {int(targets.max())}]')

        x = feats.to(dtype)
        if self.normalize:
            x = F.normalize(x, dim=1)
        scores = x @ centroids.t() / self.temperature  # (B, C)
        loss = self._loss_from_scores(scores, targets, counts > 0)
        return self.loss_weight * loss

    def _loss_from_scores(self, scores: Tensor, targets: Tensor,
                          valid: Tensor) -> Tensor:
        """Hard-negative contrastive loss from cluster scores.

        Args:
            scores (Tensor): (B, C) ``s = f . centroid / tau``.
            targets (Tensor): (B,) target clusters.
            valid (Tensor): (C,) bool, clusters with at least one slot.

        Returns:
            Tensor: The unweighted mean loss.
        """
        num, num_clusters = scores.shape
        rows = torch.arange(num, device=scores.device)
        is_target = F.one_hot(targets, num_clusters).bool()
        negative = valid.unsqueeze(0) & ~is_target

        with torch.no_grad():
            # share of each negative among the negatives (stable softmax; a
            # row without negatives gives NaN, replaced by 0 = keep nothing)
            share = torch.softmax(scores.masked_fill(~negative, float('-inf')),
                                  dim=1)
            share = torch.where(negative, share, torch.zeros_like(share))
            ordered = share.sort(dim=1, descending=True).values
            cut = (ordered.cumsum(dim=1) - self.top_percent).abs().argmin(1)
            keep = negative & (share >= ordered[rows, cut].unsqueeze(1))

        in_denominator = keep | (is_target & valid.unsqueeze(0))
        terms = scores.masked_fill(~in_denominator, float('-inf'))
        log_eps = scores.new_full((num, 1), math.log(self.eps))
        log_denominator = torch.logsumexp(torch.cat([terms, log_eps], 1), 1)
        target_score = scores[rows, targets]
        ratio = torch.exp(target_score - log_denominator)
        # a target cluster with no slot counts as e_t = 0 (reference mask)
        ratio = torch.where(valid[targets], ratio, torch.zeros_like(ratio))
        return -torch.log(ratio + self.eps).mean()

# Copyright (c) OpenMMLab. All rights reserved.
import logging
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmengine.logging import print_log
from torch import Tensor

from mmps.registry import MODELS


def cluster_centroids(features: Tensor,
                      labels: Tensor) -> Tuple[Tensor, Tensor]:
    """Mean feature of every cluster.

    Args:
        features (Tensor): (N, D) slot features.
        labels (Tensor): (N,) non-negative cluster label per slot.

    Returns:
        tuple[Tensor, Tensor]: ``centroids`` (C, D) with
        C = ``labels.max() + 1`` (the un-normalised mean of the cluster's
        slots; zeros for a label with no slot) and ``counts`` (C,) long, the
        number of slots per cluster.
    """
    labels = labels.to(device=features.device, dtype=torch.long)
    if labels.numel() == 0:
        return features.new_zeros((0, features.size(1))), labels.new_zeros(0)
    if int(labels.min()) < 0:
        raise ValueError('cluster labels must be non-negative, got '
                         f'{int(labels.min())}')
    num_clusters = int(labels.max()) + 1
    sums = features.new_zeros((num_clusters, features.size(1)))
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=num_clusters)
    centroids = sums / counts.clamp(min=1).unsqueeze(1).to(features.dtype)
    return centroids, counts


@MODELS.register_module()
class InstanceMemory(nn.Module):
    """One feature slot per training box, with a cluster label per slot.

    DICL's instance memory (a SpCL-style hybrid memory without the loss): the
    slot of a box is its global annotation index (``instances_ids``), so the
    number of slots is the number of training boxes of the dataset. Build it
    with that number, or with 0 and call :meth:`resize_` once the dataset is
    known; loading a checkpoint resizes it to the saved size.

    Every buffer is persistent (saved in checkpoints) and, as long as every
    rank calls :meth:`update` with its own features every iteration, identical
    on every rank:

    - ``features`` (N, D) float32, unit rows once initialised.
    - ``labels`` (N,) long, the cluster of each slot (initially ``arange(N)``:
      every slot its own cluster).
    - ``indep_threshold`` () float32, the frozen cluster-independence
      threshold of the re-clustering (NaN = not frozen yet).
    - ``initialized`` () bool, set by :meth:`init_features`.

    A feature with a NaN or an Inf (e.g. an fp16 overflow under AMP, whose
    step the grad scaler then skips) is never written: it would poison its
    slot and, through the centroids, every later loss. Such features are
    dropped, counted in ``num_skipped_nonfinite`` and logged.

    Args:
        num_slots (int): Number of slots N (the number of training boxes).
            Defaults to 0 (resize later).
        feat_dim (int): Feature dimension D. Defaults to 256.
        momentum (float): Momentum m of :meth:`update`
            (``M[y] <- m * M[y] + (1 - m) * f``). Defaults to 0.2.
    """

    def __init__(self,
                 num_slots: int = 0,
                 feat_dim: int = 256,
                 momentum: float = 0.2) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'momentum must be in [0, 1], got {momentum}')
        self.feat_dim = int(feat_dim)
        self.momentum = float(momentum)
        self.register_buffer('features', torch.zeros(0, self.feat_dim))
        self.register_buffer('labels', torch.zeros(0, dtype=torch.long))
        self.register_buffer('indep_threshold', torch.tensor(float('nan')))
        self.register_buffer('initialized', torch.tensor(False))
        #: features dropped by the writes for holding a NaN or an Inf
        self.num_skipped_nonfinite = 0
        self.resize_(num_slots)

    @property
    def num_slots(self) -> int:
        """int: Number of slots N."""
        return self.features.size(0)

    def extra_repr(self) -> str:
        return (f'num_slots={self.num_slots}, feat_dim={self.feat_dim}, '
                f'momentum={self.momentum}')

    # ------------------------------------------------------------------ #
    # Size and state
    # ------------------------------------------------------------------ #
    @torch.no_grad()
    def resize_(self, num_slots: int) -> 'InstanceMemory':
        """Re-allocate the memory for ``num_slots`` slots.

        Does nothing when the size is unchanged; otherwise every buffer is
        reset (zero features, ``labels = arange``, no frozen threshold, not
        initialised).

        Args:
            num_slots (int): The number of training boxes of the dataset.

        Returns:
            InstanceMemory: self.
        """
        num_slots = int(num_slots)
        if num_slots < 0:
            raise ValueError(f'num_slots must be >= 0, got {num_slots}')
        if num_slots == self.num_slots and self.labels.numel() == num_slots:
            return self
        device = self.features.device
        self.features = torch.zeros(num_slots, self.feat_dim, device=device)
        self.labels = torch.arange(num_slots, device=device)
        self.indep_threshold = torch.tensor(float('nan'), device=device)
        self.initialized = torch.tensor(False, device=device)
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Older checkpoints also hold the image of every slot
        # (``image_ids``): the pseudo-label hook reads it from the dataset
        # now, so the saved copy is dropped.
        state_dict.pop(prefix + 'image_ids', None)
        # A checkpoint defines the size: a memory built before the dataset
        # was known (or for testing only) takes the saved number of slots.
        saved = state_dict.get(prefix + 'features')
        if isinstance(saved, Tensor) and saved.dim() == 2 \
                and saved.size(1) == self.feat_dim \
                and saved.size(0) != self.num_slots:
            self.resize_(saved.size(0))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _check_slot_ids(self, slot_ids: Tensor) -> None:
        if slot_ids.numel() == 0:
            return
        lo, hi = int(slot_ids.min()), int(slot_ids.max())
        if lo < 0 or hi >= self.num_slots:
            raise ValueError(
                f'InstanceMemory has {self.num_slots} slots but got slot ids '
                f'in [{lo}, {hi}]: the memory must have one slot per '
                'training box (build it with the dataset\'s number of boxes '
                'or call resize_), and instance ids must be in '
                '[0, num_slots)')

    def _as_slot_ids(self, slot_ids, num: int) -> Tensor:
        slot_ids = torch.as_tensor(slot_ids, device=self.features.device)
        slot_ids = slot_ids.reshape(-1).long()
        if slot_ids.numel() != num:
            raise ValueError(f'got {num} features but {slot_ids.numel()} '
                             'slot ids')
        return slot_ids

    def _as_features(self, feats: Tensor) -> Tensor:
        if feats.dim() != 2 or feats.size(1) != self.feat_dim:
            raise ValueError(f'expected (B, {self.feat_dim}) features, got '
                             f'{tuple(feats.shape)}')
        # bf16/fp16 cannot be written into the fp32 bank: cast first.
        return feats.detach().to(device=self.features.device,
                                 dtype=self.features.dtype)

    def _drop_non_finite(self, feats: Tensor, *ids: Tensor) -> tuple:
        """Drop the rows of ``feats`` (and of ``ids``) with a NaN or an Inf.

        Called after the all-gather, so every rank drops the same rows.
        """
        finite = torch.isfinite(feats).all(dim=1)
        num_bad = feats.size(0) - int(finite.sum())
        if num_bad == 0:
            return (feats, ) + ids
        self.num_skipped_nonfinite += num_bad
        print_log(
            f'InstanceMemory: skipped {num_bad} feature(s) with NaN or Inf '
            f'values ({self.num_skipped_nonfinite} so far); their slots keep '
            'their previous features',
            logger='current',
            level=logging.WARNING)
        return (feats[finite], ) + tuple(i[finite] for i in ids)

    # ------------------------------------------------------------------ #
    # Writing
    # ------------------------------------------------------------------ #
    @torch.no_grad()
    def init_features(self,
                      slot_ids: Tensor,
                      feats: Tensor,
                      gather: bool = False) -> None:
        """Write (L2-normalised) features into their slots.

        Used by the memory initialisation before training. A slot given
        twice takes its last feature. Marks the memory as initialised.

        Args:
            slot_ids (Tensor): (B,) slot per feature.
            feats (Tensor): (B, D) features, any float dtype.
            gather (bool): All-gather the inputs across ranks first (when each
                rank holds only its shard; then every rank must call this the
                same number of times). Defaults to False.
        """
        feats = self._as_features(feats)
        slot_ids = self._as_slot_ids(slot_ids, feats.size(0))
        if gather:
            feats, slot_ids = self._gather(feats, slot_ids)
        self._check_slot_ids(slot_ids)
        feats, slot_ids = self._drop_non_finite(feats, slot_ids)
        if slot_ids.numel() > 0:
            # keep the last occurrence of a repeated slot (deterministic)
            order = torch.arange(slot_ids.numel(), device=slot_ids.device)
            last = torch.full((self.num_slots, ),
                              -1,
                              dtype=torch.long,
                              device=slot_ids.device)
            last.scatter_reduce_(0, slot_ids, order, reduce='amax')
            keep = last[slot_ids] == order
            self.features.index_copy_(0, slot_ids[keep],
                                      F.normalize(feats[keep], dim=1))
        self.initialized.fill_(True)

    @torch.no_grad()
    def set_labels(self, labels: Tensor) -> None:
        """Replace the cluster label of every slot (e.g. after clustering).

        Args:
            labels (Tensor): (N,) non-negative integer labels. For supervised
                training pass the person ids (remapped to [0, C)).
        """
        labels = torch.as_tensor(labels, device=self.labels.device).long()
        if labels.shape != self.labels.shape:
            raise ValueError(f'expected {self.num_slots} labels, got shape '
                             f'{tuple(labels.shape)}')
        if labels.numel() and int(labels.min()) < 0:
            raise ValueError('cluster labels must be non-negative')
        self.labels.copy_(labels)

    @torch.no_grad()
    def update(self,
               feats: Tensor,
               slot_ids: Tensor,
               gather: bool = True) -> None:
        """Momentum update of the slots of this iteration's positives.

        The features of every rank are all-gathered first (rank order, then
        batch order), so that every rank applies the same updates; then, for
        every feature ``f`` with slot ``y`` in order,
        ``M[y] <- m * M[y] + (1 - m) * f`` and ``M[y] <- M[y] / |M[y]|``.
        A slot given several times is updated several times, in order, as in
        the reference's loop (the loop is vectorised over slots only). A
        feature with a NaN or an Inf is skipped (see the class doc).

        In a distributed run this is a collective: call it on every rank
        every iteration, also with no feature (``B = 0``).

        Args:
            feats (Tensor): (B, D) features (the fused, L2-normalised f_i),
                any float dtype; not normalised here.
            slot_ids (Tensor): (B,) slot of each feature.
            gather (bool): All-gather across ranks. Defaults to True.
        """
        feats = self._as_features(feats)
        slot_ids = self._as_slot_ids(slot_ids, feats.size(0))
        if gather:
            feats, slot_ids = self._gather(feats, slot_ids)
        # checked after the gather, so that every rank raises alike
        self._check_slot_ids(slot_ids)
        feats, slot_ids = self._drop_non_finite(feats, slot_ids)
        self._momentum_update(feats, slot_ids)

    def _gather(self, feats: Tensor, ids: Tensor) -> Tuple[Tensor, Tensor]:
        """All-gather features with variable batch sizes across ranks.

        Pads to the largest batch (at least one row, so no collective is
        empty) and drops the padding using the gathered counts.
        """
        count = torch.tensor([feats.size(0)],
                             dtype=torch.long,
                             device=feats.device)
        counts: List[int] = [int(c) for c in dist.all_gather(count)]
        size = max(max(counts), 1)
        pad = size - feats.size(0)
        feats = F.pad(feats, (0, 0, 0, pad))
        ids = F.pad(ids, (0, 0) * (ids.dim() - 1) + (0, pad), value=-1)
        all_feats = dist.all_gather(feats)
        all_ids = dist.all_gather(ids)
        feats = torch.cat([f[:n] for f, n in zip(all_feats, counts)])
        ids = torch.cat([i[:n] for i, n in zip(all_ids, counts)])
        return feats, ids

    def _momentum_update(self, feats: Tensor, slot_ids: Tensor) -> None:
        num = slot_ids.numel()
        if num == 0:
            return
        # occurrence rank of each entry among the entries of its slot: the
        # r-th round updates every slot's r-th entry, which is the same as
        # the sequential loop (different slots do not interact).
        sorted_ids, perm = torch.sort(slot_ids, stable=True)
        pos = torch.arange(num, device=slot_ids.device)
        starts = torch.ones_like(sorted_ids, dtype=torch.bool)
        starts[1:] = sorted_ids[1:] != sorted_ids[:-1]
        first = torch.where(starts, pos, torch.zeros_like(pos))
        first = torch.cummax(first, 0).values
        occurrence = torch.empty_like(pos)
        occurrence[perm] = pos - first
        m = self.momentum
        for r in range(int(occurrence.max()) + 1):
            sel = occurrence == r
            ys = slot_ids[sel]
            rows = m * self.features[ys] + (1.0 - m) * feats[sel]
            rows = rows / rows.norm(dim=1, keepdim=True).clamp(min=1e-12)
            self.features.index_copy_(0, ys, rows)

    # ------------------------------------------------------------------ #
    # Reading
    # ------------------------------------------------------------------ #
    @torch.no_grad()
    def get_labels(self, slot_ids: Tensor) -> Tensor:
        """Cluster labels of the given slots (a copy).

        Args:
            slot_ids (Tensor): (B,) slot ids.

        Returns:
            Tensor: (B,) long cluster labels.
        """
        slot_ids = torch.as_tensor(
            slot_ids, device=self.labels.device).reshape(-1).long()
        self._check_slot_ids(slot_ids)
        return self.labels[slot_ids].clone()

    @property
    def threshold_frozen(self) -> bool:
        """bool: Whether ``indep_threshold`` has been set."""
        return not math.isnan(float(self.indep_threshold))

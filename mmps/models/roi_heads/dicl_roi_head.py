# Copyright (c) OpenMMLab. All rights reserved.
import logging
from typing import List, Optional

import torch
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor

from mmps.registry import MODELS
from .person_search_roi_head import PersonSearchRoIHead

#: Values of ``triplet_positives``: the positives' features in the triplet.
TRIPLET_POSITIVES = ('mean', 'fused')


@MODELS.register_module()
class DICLRoIHead(PersonSearchRoIHead):
    """RoI head of DICL: the box losses plus DICL's re-id objectives.

    For the sampled positive RoIs, :meth:`loss_reid`:

    1. ``p_i`` = scene embedding of positive i, ``g_i`` = instance-branch
       embedding of its GT box (``gt_embeds[batch_gt_inds]``: one crop feeds
       every proposal of its box, *many-to-one*);
    2. ``loss_sim(p, g)`` (many-to-one) and ``loss_kl(p, g)`` (dense
       similarity KL);
    3. ``f_i = normalize((p_i + g_i) / 2)``;
    4. ``loss_id(f, memory.labels[slot_i], memory)``: contrast against the
       cluster centroids of the instance memory (the slot of a positive is
       its GT's ``instances_ids``);
    5. ``loss_triplet`` on the embeddings of all sampled RoIs with the
       positives replaced by the *un-normalised* ``(p_i + g_i) / 2`` (the
       reference's; ``triplet_positives='fused'``: by ``f``), labels: the
       positive's cluster, -1 for the negatives = background;
    6. ``memory.update(f.detach(), slots)``, after the losses. It
       all-gathers, so it runs on every rank every iteration, also without
       positives.

    Without instance views in the pipeline (``gt_embeds`` is None) there is
    no instance branch: ``p`` stands in for ``g`` (so ``f = p``) and the SIC
    losses (``loss_sim``, ``loss_kl``) are skipped.

    Each loss can be disabled with None (ablations: memory only,
    + many-to-one, + dense). The slot labels are set outside the forward by
    ``PseudoLabelHook`` before every epoch (its ``label_source``: DBSCAN
    pseudo labels, weakly supervised DICL, or the dataset's identities,
    fully supervised); the head trains on whatever labels the memory holds.
    The memory is filled before training by ``InstanceMemoryInitHook``.

    Args:
        reid_head (dict): Config of the re-id embedding head.
        memory (dict): Config of the :class:`~mmps.models.InstanceMemory`
            (its ``feat_dim`` must be the embedding size; its size is set
            from the dataset by ``InstanceMemoryInitHook``).
        loss_id (dict, optional): Memory contrast loss
            (:class:`~mmps.models.ClusterMemoryContrastLoss`).
        loss_sim (dict, optional): Many-to-one loss
            (:class:`~mmps.models.ManyToOneLoss`).
        loss_kl (dict, optional): Dense loss
            (:class:`~mmps.models.DenseSimilarityKLLoss`).
        loss_triplet (dict, optional): Batch-hard triplet with background
            (:class:`~mmps.models.BatchHardTripletWithBackgroundLoss`).
        triplet_positives (str): The positives' features in the triplet
            loss: ``'mean'``, ``(p + g) / 2`` as the reference feeds it, or
            ``'fused'``, ``normalize((p + g) / 2)`` (mmps's former default).
            Defaults to ``'mean'``.
        **kwargs: :class:`PersonSearchRoIHead` arguments.
    """

    def __init__(self,
                 reid_head: ConfigType,
                 memory: ConfigType = dict(
                     type='InstanceMemory', feat_dim=256, momentum=0.2),
                 loss_id: OptConfigType = dict(
                     type='ClusterMemoryContrastLoss',
                     temperature=0.05,
                     top_percent=0.6,
                     loss_weight=1.0),
                 loss_sim: OptConfigType = dict(
                     type='ManyToOneLoss', loss_weight=1.0),
                 loss_kl: OptConfigType = dict(
                     type='DenseSimilarityKLLoss',
                     temperature=1.0,
                     reduction='mean',
                     loss_weight=0.1),
                 loss_triplet: OptConfigType = dict(
                     type='BatchHardTripletWithBackgroundLoss',
                     margin=0.3,
                     bg_weight=0.25,
                     loss_weight=1.0),
                 triplet_positives: str = 'mean',
                 **kwargs) -> None:
        if 'label_source' in kwargs:
            raise TypeError(
                'DICLRoIHead: label_source is a setting of PseudoLabelHook '
                "now: custom_hooks=[..., dict(type='PseudoLabelHook', "
                f"label_source={kwargs['label_source']!r})]")
        super().__init__(reid_head=reid_head, **kwargs)
        if triplet_positives not in TRIPLET_POSITIVES:
            raise ValueError('triplet_positives must be one of '
                             f'{TRIPLET_POSITIVES}, got {triplet_positives!r}')
        self.triplet_positives = triplet_positives
        self.memory = MODELS.build(memory)
        if self.memory.feat_dim != self.embed_dim:
            raise ValueError(f'memory.feat_dim ({self.memory.feat_dim}) must '
                             f'be the embedding size ({self.embed_dim})')
        self._memory_checked = False
        self.loss_id = self._build_loss(loss_id)
        self.loss_sim = self._build_loss(loss_sim)
        self.loss_kl = self._build_loss(loss_kl)
        self.loss_triplet = self._build_loss(loss_triplet)

    @staticmethod
    def _build_loss(cfg: OptConfigType) -> Optional[torch.nn.Module]:
        return None if cfg is None else MODELS.build(cfg)

    def loss_reid(self, pos_instances: InstanceData, bbox_results: dict,
                  sampling_results: List[SamplingResult],
                  batch_data_samples: SampleList,
                  gt_embeds: Optional[Tensor]) -> dict:
        """DICL's re-id losses of the sampled RoIs, then the memory update.

        Args:
            pos_instances (InstanceData): The positives (``embeds``,
                ``roi_inds``, ``batch_gt_inds``, ``instances_ids``...), see
                :meth:`get_positive_instances`.
            bbox_results (dict): ``bbox_feats`` of all sampled RoIs.
            sampling_results (list[SamplingResult]): Per image.
            batch_data_samples (list[DetDataSample]): The batch.
            gt_embeds (Tensor, optional): (G, D) instance-branch embeddings
                of the GT boxes; None without instance views.

        Returns:
            dict[str, Tensor]: ``loss_sim``, ``loss_kl`` (with views),
            ``loss_id``, ``loss_triplet`` (those enabled).
        """
        if 'instances_ids' not in pos_instances:
            raise KeyError('DICLRoIHead needs gt_instances.instances_ids (the '
                           'memory slot of every GT box, packed by '
                           'PackPersonSearchInputs)')
        self._check_memory_ready()
        slots = pos_instances.instances_ids.long()
        p = pos_instances.embeds
        losses = dict()
        if gt_embeds is None:
            g = p
        else:
            g = gt_embeds[pos_instances.batch_gt_inds]
            if self.loss_sim is not None:
                losses['loss_sim'] = self.loss_sim(p, g)
            if self.loss_kl is not None:
                losses['loss_kl'] = self.loss_kl(p, g)
        fused = self.fuse_embeddings(p, g)
        targets = self.memory.get_labels(slots)
        if self.loss_id is not None:
            losses['loss_id'] = self.loss_id(fused, targets, self.memory)
        if self.loss_triplet is not None:
            triplet_pos = fused if self.triplet_positives == 'fused' else \
                self.fuse_embeddings(p, g, normalize=False)
            losses['loss_triplet'] = self._triplet_loss(
                triplet_pos, targets, pos_instances.roi_inds,
                bbox_results['bbox_feats'])
        self.memory.update(fused.detach(), slots)
        return losses

    def _check_memory_ready(self) -> None:
        """Fail (no slots) or warn once (not filled) before a training step.

        The memory is sized and filled from the training set by
        :class:`~mmps.engine.hooks.InstanceMemoryInitHook`; a config without
        it would train against an empty or all-zero memory. Checked at the
        first step only (reading the ``initialized`` flag syncs a GPU).
        """
        if self._memory_checked:
            return
        if self.memory.num_slots == 0:
            raise RuntimeError(
                'DICLRoIHead: the instance memory has no slots. Add '
                "dict(type='InstanceMemoryInitHook') (and "
                "dict(type='PseudoLabelHook')) to custom_hooks: it sizes the "
                'memory from the training set and fills it before training.')
        self._memory_checked = True
        if not bool(self.memory.initialized):
            print_log(
                'DICLRoIHead: training with an instance memory that was never '
                'initialised (all-zero features): is InstanceMemoryInitHook '
                'missing from custom_hooks?', logger='current',
                level=logging.WARNING)

    def _triplet_loss(self, pos_feats: Tensor, pos_labels: Tensor,
                      pos_roi_inds: Tensor, bbox_feats: Tensor) -> Tensor:
        """Triplet loss over all sampled RoIs, positives replaced by ``f``.

        The negatives' scene embeddings are labelled -1 (background); the
        loss does not depend on the order of the RoIs.
        """
        is_neg = torch.ones(
            bbox_feats.size(0), dtype=torch.bool, device=bbox_feats.device)
        is_neg[pos_roi_inds] = False
        neg_feats = self.reid_head(bbox_feats[is_neg])
        feats = torch.cat([pos_feats, neg_feats.to(pos_feats.dtype)])
        labels = torch.cat(
            [pos_labels.to(feats.device),
             pos_labels.new_full((neg_feats.size(0), ), -1)])
        return self.loss_triplet(feats, labels)

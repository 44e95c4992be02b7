# Copyright (c) OpenMMLab. All rights reserved.
import math
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine import dist
from mmengine.hooks import Hook

from mmps.registry import HOOKS
from ..runner.loops import resumed_in_mid_epoch
from .instance_memory_init_hook import get_memory, train_dataset, unwrap_model


def person_id_labels(person_ids: np.ndarray) -> np.ndarray:
    """Slot labels from dataset identities (fully supervised training).

    Labeled boxes: their identity remapped to ``[0, C)`` (sorted ids);
    unlabeled boxes (-1): one singleton cluster each, ``C, C + 1, ...``.

    Args:
        person_ids (np.ndarray): (N, ) identity per slot, -1 = unlabeled.

    Returns:
        np.ndarray: (N, ) int64 non-negative labels.
    """
    person_ids = np.asarray(person_ids, np.int64)
    labels = np.empty_like(person_ids)
    labeled = person_ids >= 0
    uniq, inverse = np.unique(person_ids[labeled], return_inverse=True)
    labels[labeled] = inverse
    labels[~labeled] = len(uniq) + np.arange(int((~labeled).sum()))
    return labels


#: Values of ``label_source``: where the memory's slot labels come from.
LABEL_SOURCES = ('cluster', 'person_id')


@HOOKS.register_module()
class PseudoLabelHook(Hook):
    """Set the cluster label of every memory slot before every epoch.

    ``before_train_epoch`` (epoch 0 included), by ``label_source``:

    - ``'cluster'`` (DICL): rank 0 clusters the memory features
      (:func:`~mmps.models.clustering.generate_pseudo_labels`: k-reciprocal
      Jaccard distance, DBSCAN at three ``eps``, scene constraint,
      reliability). The cluster-independence threshold of the first
      clustering is kept frozen in the memory's ``indep_threshold`` buffer
      (so it survives resuming) and reused later;
    - ``'person_id'``: the dataset's identities (unlabeled boxes are
      singletons), fully supervised.

    The image and the identity of every slot come from the training set's
    slot table (``get_slot_table()``), read once, on rank 0, at the first
    epoch.

    A run resumed in mid-epoch (:class:`ResumableEpochBasedTrainLoop`) keeps
    the labels of its checkpoint until the next epoch.

    The labels are broadcast from rank 0 and set on every rank
    (``memory.set_labels``). Logged (logger, ``message_hub`` info
    ``pseudo_labels`` and the visualizer's scalars, step = epoch): the
    number of clusters (singletons included), of singletons and of
    clusters of at least two boxes, the clustering's own counts and time,
    and, when the dataset has identities, the ARI / NMI of the labels
    against them (labeled boxes only).

    Args:
        label_source (str): ``'cluster'`` (pseudo labels, weakly
            supervised) or ``'person_id'`` (the dataset's identities).
            Defaults to ``'cluster'``.
        eps (Sequence[float]): DBSCAN radii (tight, normal, loose).
            Defaults to (0.68, 0.70, 0.72).
        min_samples (int): DBSCAN ``min_samples`` (4 PRW, 2 CUHK-SYSU).
            Defaults to 4.
        k1 (int): k-reciprocal neighbours. Defaults to 30.
        k2 (int): Query-expansion neighbours. Defaults to 6.
        scene_constraint (bool): At most one box per image in a cluster.
            Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self,
                 label_source: str = 'cluster',
                 eps: Sequence[float] = (0.68, 0.70, 0.72),
                 min_samples: int = 4,
                 k1: int = 30,
                 k2: int = 6,
                 scene_constraint: bool = True) -> None:
        if label_source not in LABEL_SOURCES:
            raise ValueError(f'label_source must be one of {LABEL_SOURCES}, '
                             f'got {label_source!r}')
        self.label_source = label_source
        self.eps = tuple(float(e) for e in eps)
        if len(self.eps) != 3:
            raise ValueError(f'eps must be (tight, normal, loose), got {eps}')
        self.min_samples = int(min_samples)
        self.k1 = int(k1)
        self.k2 = int(k2)
        self.scene_constraint = bool(scene_constraint)
        #: the training set's slot table (rank 0, read at the first epoch)
        self._slot_table: Optional[dict] = None

    def before_train_epoch(self, runner) -> None:
        if resumed_in_mid_epoch(runner):
            # the epoch's labels were made at its start: the checkpoint has
            # them (memory.labels), re-clustering now would change them
            runner.logger.info('PseudoLabelHook: resumed in mid-epoch, '
                               'keeping the cluster labels of the checkpoint')
            return
        model = unwrap_model(runner)
        memory = get_memory(model)
        source = self.label_source

        device = memory.labels.device
        labels = torch.zeros(memory.num_slots, dtype=torch.long, device=device)
        threshold = torch.full((1, ), float('nan'), device=device)
        info = dict()
        if dist.get_rank() == 0:
            if self._slot_table is None:  # static: read once
                self._slot_table = train_dataset(runner).get_slot_table()
            new_labels, new_threshold, info = self.make_labels(
                memory, self._slot_table)
            labels.copy_(torch.as_tensor(new_labels, device=device))
            if new_threshold is not None:
                threshold.fill_(float(new_threshold))
        dist.broadcast(labels, src=0)
        dist.broadcast(threshold, src=0)
        memory.set_labels(labels)
        if not math.isnan(float(threshold)):
            memory.indep_threshold.fill_(float(threshold))
        self.log(runner, info, source)

    def make_labels(self, memory, slot_table: dict) -> tuple:
        """Labels (N, ), the independence threshold and the statistics.

        Args:
            memory (InstanceMemory): The memory (its features are clustered).
            slot_table (dict): ``person_ids`` and ``img_ids`` of every slot
                (``get_slot_table()`` of the training set).
        """
        person_ids = slot_table['person_ids']
        if len(person_ids) != memory.num_slots:
            raise ValueError(
                f'PseudoLabelHook: the memory has {memory.num_slots} slots, '
                f'the training set {len(person_ids)} boxes')
        source = self.label_source
        if source == 'person_id':
            labels = person_id_labels(person_ids)
            threshold = None
        else:
            from mmps.models.clustering import generate_pseudo_labels
            frozen = float(memory.indep_threshold) \
                if memory.threshold_frozen else None
            out = generate_pseudo_labels(
                memory.features.detach().cpu(),
                slot_table['img_ids'],
                eps=self.eps,
                min_samples=self.min_samples,
                k1=self.k1,
                k2=self.k2,
                indep_threshold=frozen,
                scene_constraint=self.scene_constraint,
                progress=True)
            labels = np.asarray(out['labels'], np.int64)
            # frozen after the first clustering
            threshold = frozen if frozen is not None else out.get(
                'indep_threshold')
        counts = np.bincount(labels) if len(labels) else np.zeros(0, int)
        counts = counts[counts > 0]
        info = dict(
            num_clusters=len(counts),
            num_singletons=int((counts == 1).sum()),
            num_multi_clusters=int((counts > 1).sum()))
        if source != 'person_id':
            for key in ('num_outliers', 'num_scene_split', 'num_unreliable',
                        'time_total'):
                if key in out:
                    info[key] = out[key]
        if (person_ids >= 0).any():
            from mmps.models.clustering import cluster_quality
            quality = cluster_quality(labels, person_ids)
            info.update(ari=float(quality['ari']), nmi=float(quality['nmi']))
        if threshold is not None:
            threshold = float(threshold)
            info['indep_threshold'] = threshold
        return labels, threshold, info

    @staticmethod
    def log(runner, info: dict, source: str) -> None:
        if not info:
            return
        runner.message_hub.update_info('pseudo_labels', dict(info))
        text = ', '.join(f'{k}: {v:.4f}' if isinstance(v, float) else
                         f'{k}: {v}' for k, v in info.items())
        runner.logger.info(f'PseudoLabelHook ({source}, epoch '
                           f'{runner.epoch}): {text}')
        runner.visualizer.add_scalars(
            {f'pseudo_labels/{k}': v
             for k, v in info.items()}, step=runner.epoch)

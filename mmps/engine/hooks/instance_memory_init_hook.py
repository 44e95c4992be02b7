# Copyright (c) OpenMMLab. All rights reserved.
import copy
from typing import List, Optional, Sequence

import torch
from mmengine import dist
from mmcv.transforms import (RandomChoiceResize, RandomFlip, RandomResize,
                             Resize)
from mmengine.dataset import Compose, pseudo_collate
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.utils import ProgressBar

from mmps.datasets.transforms import BoxOcclusion
from mmps.registry import HOOKS, TRANSFORMS

#: Random steps dropped from the train pipeline for the initialisation
#: (their subclasses too, e.g. mmdet's ``RandomFlip``).
RANDOM_TRANSFORMS = (RandomFlip, BoxOcclusion)
#: Random resizes replaced by a fixed ``Resize``.
RANDOM_RESIZES = (RandomChoiceResize, RandomResize)


def unwrap_model(runner) -> torch.nn.Module:
    """The runner's model without its (DDP...) wrapper."""
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def get_memory(model: torch.nn.Module):
    """The ``InstanceMemory`` of a DICL-style model (``roi_head.memory``)."""
    memory = getattr(getattr(model, 'roi_head', None), 'memory', None)
    if memory is None:
        raise TypeError(f'{type(model).__name__} has no roi_head.memory: the '
                        'instance memory hooks need a DICLRoIHead')
    return memory


def train_dataset(runner):
    """The person search dataset of the training loop (wrappers such as
    ``RepeatDataset`` unwrapped)."""
    dataset = runner.train_dataloader.dataset
    while not hasattr(dataset, 'num_instances') and hasattr(
            dataset, 'dataset'):
        dataset = dataset.dataset
    if not hasattr(dataset, 'num_instances'):
        raise TypeError(f'{type(dataset).__name__} has no num_instances: the '
                        'instance memory needs a person search train split')
    return dataset


@HOOKS.register_module()
class InstanceMemoryInitHook(Hook):
    """Fill DICL's instance memory before training.

    ``before_train``, unless the memory is already initialised with one
    slot per training box (a resumed checkpoint restores it): the memory is
    resized to the training set's ``num_instances``, then the model, in eval mode and without gradients, runs over
    every training image with a deterministic pipeline and writes, for
    every GT box, the model's training feature of the box
    (``model.embed_gt_boxes(instance_views='packed')``: DICL's
    ``normalize((p + g) / 2)``, ``p`` the scene embedding of the box as a
    RoI, ``g`` the embedding of its instance view; ``p`` alone without
    views, as in training) into the box's slot (``instances_ids``). The
    hook runs the loop and writes the memory; the model computes.

    Distributed: each rank embeds a shard of the images
    (``rank::world_size``), the features are all-gathered once, and every
    rank writes all of them: the memory is identical on every rank.

    Boxes and views are in input pixels, as in every mmps pipeline
    (``LoadPersonSearchAnnotations`` refuses to run after a geometric
    transform). By default it is the train pipeline without its random steps: ``RandomFlip``
    and ``BoxOcclusion`` dropped, a random resize (``RandomChoiceResize``,
    ``RandomResize``) replaced by a fixed ``Resize`` to the scale of the
    test pipeline's ``Resize`` (else the largest of the random scales).

    Args:
        pipeline (Sequence[dict], optional): The deterministic pipeline.
            Defaults to None (derived from the train pipeline as above).
        batch_size (int): Images per forward. Defaults to 1.
    """

    priority = 'NORMAL'

    def __init__(self,
                 pipeline: Optional[Sequence[dict]] = None,
                 batch_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.pipeline = None if pipeline is None else list(pipeline)
        self.batch_size = int(batch_size)

    # ------------------------------------------------------------------ #
    # pipeline
    # ------------------------------------------------------------------ #
    @staticmethod
    def _test_scale(runner) -> Optional[tuple]:
        """The scale of the test pipeline's (first) ``Resize``, if any."""
        cfg = runner.cfg.get('test_dataloader') or {}
        for t in cfg.get('dataset', {}).get('pipeline', []) or []:
            transform = TRANSFORMS.build(copy.deepcopy(t))
            if isinstance(transform, Resize) and transform.scale:
                return tuple(transform.scale)
        return None

    def deterministic_pipeline(self, runner) -> List[dict]:
        """The pipeline of the initialisation (configs, see the class).

        Each step of the train pipeline is built once to know what it is
        (by class, whatever its registry prefix): the random ones are
        dropped, a random resize becomes a fixed ``Resize``.
        """
        if self.pipeline is not None:
            return copy.deepcopy(self.pipeline)
        train_pipeline = runner.cfg.train_dataloader.dataset.get('pipeline')
        if not train_pipeline:
            raise ValueError('InstanceMemoryInitHook: no train pipeline in '
                             'the config; give the hook a pipeline')
        test_scale = self._test_scale(runner)
        pipeline = []
        for t in copy.deepcopy(list(train_pipeline)):
            transform = TRANSFORMS.build(copy.deepcopy(t))
            if isinstance(transform, RANDOM_TRANSFORMS):
                continue
            if isinstance(transform, RANDOM_RESIZES):
                scales = getattr(transform, 'scales', None) or \
                    transform.scale
                scale = test_scale or max(
                    (tuple(s) for s in scales), key=lambda s: s[0] * s[1])
                t = dict(
                    type='Resize',
                    scale=scale,
                    keep_ratio=transform.resize_cfg.get('keep_ratio', True))
            pipeline.append(dict(t))
        return pipeline

    # ------------------------------------------------------------------ #
    # hook
    # ------------------------------------------------------------------ #
    def before_train(self, runner) -> None:
        model = unwrap_model(runner)
        memory = get_memory(model)
        dataset = train_dataset(runner)
        if bool(memory.initialized):
            resumed = bool(getattr(runner, '_resume', True))
            if resumed and memory.num_slots == dataset.num_instances:
                runner.logger.info('InstanceMemoryInitHook: the memory is '
                                   'already initialised (resumed), skipped')
                return
            if memory.num_slots != dataset.num_instances:
                runner.logger.warning(
                    f'InstanceMemoryInitHook: the loaded memory has '
                    f'{memory.num_slots} slots, the training set '
                    f'{dataset.num_instances} boxes (a checkpoint of another '
                    'dataset?): the memory is initialised again')
            else:
                runner.logger.info(
                    'InstanceMemoryInitHook: load_from (not a resume): the '
                    "checkpoint's memory belongs to its own run, the memory "
                    'is initialised again from this model')
            memory.resize_(0)  # reset every buffer
        memory.resize_(dataset.num_instances)
        pipeline = Compose(
            [TRANSFORMS.build(t) for t in self.deterministic_pipeline(runner)])

        was_training = model.training
        model.eval()
        try:
            slots, feats = self.embed_shard(model, dataset, pipeline)
        finally:
            model.train(was_training)
        device = memory.features.device
        memory.init_features(
            slots.to(device), feats.to(device), gather=True)
        written = memory.features.norm(dim=1) > 0
        message = (f'InstanceMemoryInitHook: {int(written.sum())} / '
                   f'{memory.num_slots} memory slots initialised from '
                   f'{len(dataset)} images')
        if not bool(written.all()):
            runner.logger.warning(message + ' (the pipeline dropped boxes)')
        else:
            runner.logger.info(message)

    @torch.no_grad()
    def embed_shard(self, model, dataset, pipeline) -> tuple:
        """Fused features of the GT boxes of this rank's images.

        Returns:
            tuple[Tensor, Tensor]: ``slots`` (n, ) and ``feats`` (n, D), on
            the model's device.
        """
        rank, world_size = dist.get_dist_info()
        indices = list(range(rank, len(dataset), world_size))
        slots, feats = [], []
        # rank 0 shows the progress of its shard (the others run in step)
        progress = ProgressBar(len(indices)) if rank == 0 and indices \
            else None
        for start in range(0, len(indices), self.batch_size):
            batch = [
                pipeline(copy.deepcopy(dataset.get_data_info(i)))
                for i in indices[start:start + self.batch_size]
            ]
            data = model.data_preprocessor(pseudo_collate(batch), False)
            s, f = self.embed_batch(model, data['inputs'],
                                    data['data_samples'])
            slots.append(s)
            feats.append(f)
            if progress is not None:
                for _ in batch:
                    progress.update()
        if progress is not None:
            progress.file.write('\n')
        embed_dim = model.roi_head.embed_dim
        device = next(model.parameters()).device
        if not slots:
            return (torch.zeros(0, dtype=torch.long, device=device),
                    torch.zeros(0, embed_dim, device=device))
        return torch.cat(slots), torch.cat(feats)

    @staticmethod
    def embed_batch(model, inputs, data_samples) -> tuple:
        """Slots and features of the GT boxes of a preprocessed batch: the
        model's training feature of a GT box
        (``embed_gt_boxes(instance_views='packed')``)."""
        slots = torch.cat([
            s.gt_instances.instances_ids.reshape(-1).long()
            for s in data_samples
        ])
        feats = model.embed_gt_boxes(
            inputs, data_samples, instance_views='packed', normalize=True)
        return slots.to(feats.device), feats

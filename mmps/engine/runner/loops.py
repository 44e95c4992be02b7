# Copyright (c) OpenMMLab. All rights reserved.
import random
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmps.registry import LOOPS

#: ``message_hub`` runtime-info key of the random state (saved in checkpoints).
RANDOM_STATE_KEY = 'mmps_random_state'


def get_random_state() -> dict:
    """The states of Python's, NumPy's and torch's (CPU, CUDA) generators."""
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    """Restore the generators' states from :func:`get_random_state`."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        cuda_states = state['cuda']
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """Epoch-based training that resumes exactly, also in mid-epoch.

    MMEngine's :class:`~mmengine.runner.EpochBasedTrainLoop` restarts an
    interrupted epoch from its first batch and re-seeds the random
    generators on ``--resume``, so that a resumed run sees other batches and
    other augmentations than the uninterrupted one. This loop:

    - records the random generators' states (Python, NumPy, torch CPU and
      CUDA) in the message hub after every iteration, so that every
      checkpoint carries them (``message_hub`` is part of mmengine's
      checkpoints), and restores them before the next batch is drawn: on
      resume, and at the start of every epoch (so that validation or hooks
      between two epochs do not change the random stream of training);
    - on a checkpoint saved in mid-epoch (``CheckpointHook(by_epoch=False)``)
      skips the batches of that epoch that were already trained: the
      sampler's indices are advanced without loading the images (a
      single-process loader; with workers the batches are loaded and
      dropped, which keeps their order).

    With the model, the optimizer, the schedulers and DICL's memory (its
    buffers) in the checkpoint, the resumed run's losses equal those of an
    uninterrupted run (same seed, deterministic mode). Hooks that act at the
    start of an epoch can tell a mid-epoch resume by
    :func:`resumed_in_mid_epoch`.
    """

    def run_epoch(self) -> None:
        """Iterate one epoch, or what is left of it after a resume."""
        done = self.batches_done_in_epoch()
        # the generators as the last training step left them (saved in any
        # checkpoint): a resumed run continues exactly there, and an
        # uninterrupted one is not changed by what ran in between
        # (validation, hooks)
        state = self.runner.message_hub.get_info(RANDOM_STATE_KEY)
        if state is not None and done == 0:
            set_random_state(state)
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        batches = iter(self.dataloader)
        if done:
            self._skip(batches, done)
            if state is not None:
                set_random_state(state)
            print_log(
                f'resumed in epoch {self._epoch + 1} after batch {done} of '
                f'{len(self.dataloader)}', logger='current')
        # run the loader to its end (a batch sampler may reset its state
        # only then, e.g. mmdet's AspectRatioBatchSampler)
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch) -> None:
        """Train one batch; then record the generators' states."""
        self.runner.call_hook(
            'before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(
            data_batch, optim_wrapper=self.runner.optim_wrapper)
        # before after_train_iter: CheckpointHook saves there
        self.runner.message_hub.update_info(
            RANDOM_STATE_KEY, get_random_state(), resumed=True)
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
        self._iter += 1

    def batches_done_in_epoch(self) -> int:
        """Batches of the current epoch trained before a resume (else 0)."""
        done = self._iter - self._epoch * len(self.dataloader)
        if not 0 <= done < len(self.dataloader):
            raise RuntimeError(
                f'cannot resume at iteration {self._iter} of epoch '
                f'{self._epoch}: the epoch has {len(self.dataloader)} '
                'batches (was the batch size or the dataset changed?)')
        return done

    @staticmethod
    def _skip(batches: Iterator, num: int) -> None:
        sampler_iter: Optional[Iterator] = getattr(batches, '_sampler_iter',
                                                   None)
        single_process = getattr(batches, '_num_workers', 1) == 0
        for _ in range(num):
            if single_process and sampler_iter is not None:
                next(sampler_iter)  # the indices only, no image loaded
            else:
                next(batches)


def resumed_in_mid_epoch(runner) -> bool:
    """Whether the runner's current epoch resumes after its first batch."""
    loop = getattr(runner, 'train_loop', None)
    if not isinstance(loop, ResumableEpochBasedTrainLoop):
        return False
    return loop.batches_done_in_epoch() > 0

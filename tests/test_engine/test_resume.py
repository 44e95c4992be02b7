# Copyright (c) OpenMMLab. All rights reserved.
"""--resume continues a DICL run exactly: the losses of a run resumed from a
mid-epoch or an epoch-end checkpoint equal the uninterrupted run's."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmps.engine import trust_local_checkpoints
from mmps.datasets.synthetic import make_synthetic_prw
from mmps.utils import register_all_modules

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'dicl_synthetic_prw.py')


class LossRecorder(Hook):
    """Keep every iteration's logged losses, keyed by the iteration."""

    priority = 'LOWEST'

    def __init__(self):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses[runner.iter] = {
            k: float(v) for k, v in outputs.items() if k.startswith('loss')
        }


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_synthetic_prw(
        str(tmp_path_factory.mktemp('prw')), seed=4, num_images=24,
        num_ids=8, image_size=(120, 200)).root


def _train(root, work_dir, name, resume_from=None):
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.data_root = root
    cfg.train_cfg.max_epochs = 2
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.param_scheduler[-1].end = 2
    cfg.param_scheduler[-1].milestones = [1]  # the lr changes at the resume
    cfg.randomness = dict(seed=0, deterministic=True)
    # epoch-end checkpoints and one in the middle of epoch 0
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=-1)
    cfg.custom_hooks = cfg.custom_hooks + [
        dict(type='CheckpointHook', by_epoch=False, interval=3)
    ]
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name  # runners of one second share no logger
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = resume_from
    trust_local_checkpoints()  # as tools/train.py: the test made the files
    runner = Runner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder)
    try:
        runner.train()
    finally:
        trust_local_checkpoints(False)
    model = runner.model
    return recorder.losses, {k: v.clone() for k, v in
                             model.state_dict().items()}, len(
                                 runner.train_dataloader)


def test_resume_equals_uninterrupted_run(root, tmp_path):
    full_losses, full_state, iters_per_epoch = _train(root, tmp_path / 'full',
                                                      'resume_full')
    assert iters_per_epoch > 3  # iter_3 is in the middle of epoch 0
    total = 2 * iters_per_epoch
    assert sorted(full_losses) == list(range(total))
    assert 'loss_id' in full_losses[0] and 'loss_sim' in full_losses[0]

    for ckpt, start in (
                        ('epoch_1.pth', iters_per_epoch), ('iter_3.pth', 3)):
        losses, state, _ = _train(root, tmp_path / ckpt, f'resume_{start}',
                                  str(tmp_path / 'full' / ckpt))
        # the resumed run trains exactly the remaining iterations ...
        assert sorted(losses) == list(range(start, total)), ckpt
        # ... with the uninterrupted run's losses
        for it in range(start, total):
            assert losses[it] == pytest.approx(
                full_losses[it], rel=1e-6, abs=1e-7), (ckpt, it, losses[it],
                                                       full_losses[it])
        # and ends with the same weights, memory, cluster labels, threshold
        for key, value in full_state.items():
            if value.is_floating_point():
                torch.testing.assert_close(
                    state[key], value, rtol=1e-5, atol=1e-6, msg=key)
            else:
                assert torch.equal(state[key], value), (ckpt, key)
    assert 'roi_head.memory.labels' in full_state

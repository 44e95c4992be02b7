# Copyright (c) OpenMMLab. All rights reserved.
"""Two CPU processes (gloo): DICL's memory stays identical on every rank, its
gathered update equals one process's, and a rank without positives neither
deadlocks nor diverges."""
import os
import os.path as osp
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mmps.datasets.synthetic import make_synthetic_prw

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'dicl_synthetic_prw.py')
WORLD = 2
TIMEOUT = 300  # seconds: a deadlock fails the test instead of hanging CI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _init(rank: int, port: int) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
        MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from mmps.utils import init_cpu_distributed
    assert init_cpu_distributed('pytorch')


def _run_and_leave(fn, rank, port, *args):
    """A worker: ``fn``, then the group is torn down on every rank (gloo
    may abort a process that exits with its group alive)."""
    fn(rank, port, *args)
    from mmps.utils import destroy_distributed
    destroy_distributed()


def _spawn(fn, *args):
    ctx = mp.get_context('spawn')
    port = _free_port()
    procs = [ctx.Process(target=_run_and_leave, args=(fn, r, port) + args)
             for r in range(WORLD)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, 'a rank did not finish (deadlock?)'
    assert [p.exitcode for p in procs] == [0] * WORLD


# ---------------------------------------------------------------------- #
# the memory update: all-gathered = one process with the whole batch
# ---------------------------------------------------------------------- #
def _memory_worker(rank, port, out_dir):
    _init(rank, port)
    from mmps.models.reid import InstanceMemory
    memory = InstanceMemory(feat_dim=8, momentum=0.2)
    memory.resize_(10)
    gen = torch.Generator().manual_seed(0)
    memory.init_features(torch.arange(10), torch.randn(10, 8, generator=gen),
                         gather=False)
    feats, slots = _rank_batch(rank)
    memory.update(feats, slots)
    # a second step where rank 1 has no positive at all
    if rank == 0:
        memory.update(torch.randn(3, 8, generator=gen), torch.tensor([1, 1, 9]))
    else:
        memory.update(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long))
    torch.save(memory.state_dict(), osp.join(out_dir, f'memory{rank}.pt'))


def _rank_batch(rank):
    gen = torch.Generator().manual_seed(100 + rank)
    feats = torch.nn.functional.normalize(torch.randn(4, 8, generator=gen))
    slots = torch.tensor([[0, 3, 3, 7], [3, 5, 0, 9]][rank])
    return feats, slots


def test_gathered_memory_update_equals_one_process(tmp_path):
    _spawn(_memory_worker, str(tmp_path))
    states = [torch.load(tmp_path / f'memory{r}.pt') for r in range(WORLD)]
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0,
                                   atol=0, equal_nan=True, msg=key)
    # one process, the two ranks' batches in rank order
    from mmps.models.reid import InstanceMemory
    ref = InstanceMemory(feat_dim=8, momentum=0.2)
    ref.resize_(10)
    gen = torch.Generator().manual_seed(0)
    ref.init_features(torch.arange(10), torch.randn(10, 8, generator=gen),
                      gather=False)
    batches = [_rank_batch(r) for r in range(WORLD)]
    ref.update(torch.cat([b[0] for b in batches]),
               torch.cat([b[1] for b in batches]), gather=False)
    ref.update(torch.randn(3, 8, generator=gen), torch.tensor([1, 1, 9]),
               gather=False)
    torch.testing.assert_close(states[0]['features'], ref.features)


# ---------------------------------------------------------------------- #
# DDP training steps, one rank without any person in its image
# ---------------------------------------------------------------------- #
def _ddp_worker(rank, port, out_dir):
    _init(rank, port)
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper

    from mmps.registry import MODELS
    from mmps.testing import (demo_person_search_inputs, get_detector_cfg,
                              prepare_instance_memory,
                              shrink_person_search_cfg)
    from mmps.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    cfg = shrink_person_search_cfg(get_detector_cfg('dicl_prw.py'))
    cfg.data_preprocessor.type = 'PersonSearchDataPreprocessor'
    model = MODELS.build(cfg)
    model.init_weights()
    prepare_instance_memory(model)
    ddp = MMDistributedDataParallel(module=model, device_ids=None,
                                    broadcast_buffers=False,
                                    find_unused_parameters=False)
    optim = build_optim_wrapper(
        ddp, dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    h, w = model.crop_size
    for step in range(3):
        # rank 1's image has no person at the first steps: no positive RoI
        num = [2] if rank == 0 or step == 2 else [0]
        data = demo_person_search_inputs(1, num_items=num, seed=10 * step +
                                         rank)
        for sample in data['data_samples']:
            n = len(sample.gt_instances)
            sample.gt_instances.crops = torch.randint(
                0, 256, (n, 3, h, w), dtype=torch.uint8)
        log_vars = ddp.train_step(data, optim)
        assert all(torch.isfinite(torch.as_tensor(v)).all()
                   for v in log_vars.values()), log_vars
    state = {k: v for k, v in model.state_dict().items()}
    torch.save(state, osp.join(out_dir, f'model{rank}.pt'))


def test_ddp_steps_with_a_rank_without_positives(tmp_path):
    _spawn(_ddp_worker, str(tmp_path))
    states = [torch.load(tmp_path / f'model{r}.pt') for r in range(WORLD)]
    memory = [k for k in states[0] if '.memory.' in k]
    assert memory
    for key in states[0]:
        if 'running_' in key or 'num_batches_tracked' in key:
            continue  # BN statistics are per rank (not broadcast)
        torch.testing.assert_close(states[0][key], states[1][key],
                                   equal_nan=True, msg=key)


# ---------------------------------------------------------------------- #
# a short DICL run through the runner (hooks: init, re-clustering)
# ---------------------------------------------------------------------- #
def _runner_worker(rank, port, root, work_dir):
    _init(rank, port)
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from mmps.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.launcher = 'pytorch'
    cfg.train_dataloader.dataset.data_root = root
    cfg.train_dataloader.batch_size = 1
    cfg.train_cfg.max_epochs = 2
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'dist_rank{rank}'

    class DumpMemory(Hook):

        def after_train_epoch(self, runner):
            memory = runner.model.module.roi_head.memory
            torch.save({k: v.clone() for k, v in memory.state_dict().items()},
                       osp.join(work_dir, f'memory{rank}_{runner.epoch}.pt'))

    runner = Runner.from_cfg(cfg)
    runner.register_hook(DumpMemory(), priority='LOWEST')
    runner.train()


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_synthetic_prw(
        str(tmp_path_factory.mktemp('prw')), seed=4, num_images=24,
        num_ids=8, image_size=(120, 200)).root


@pytest.mark.slow
def test_two_process_training_keeps_the_memory_identical(root, tmp_path):
    _spawn(_runner_worker, root, str(tmp_path))
    for epoch in range(2):
        states = [
            torch.load(tmp_path / f'memory{r}_{epoch}.pt')
            for r in range(WORLD)
        ]
        assert bool(states[0]['initialized'])
        for key in ('features', 'labels', 'indep_threshold'):
            torch.testing.assert_close(
                states[0][key], states[1][key], equal_nan=True,
                rtol=0, atol=0, msg=f'{key} after epoch {epoch}')
        # trained: the memory moved away from its initial features
    assert not torch.equal(
        torch.load(tmp_path / 'memory0_0.pt')['features'],
        torch.load(tmp_path / 'memory0_1.pt')['features'])


# ---------------------------------------------------------------------- #
# teardown: every rank leaves the group, a second call is a no-op
# ---------------------------------------------------------------------- #
def _destroy_worker(rank, port):
    _init(rank, port)
    import torch.distributed as dist

    from mmps.utils import destroy_distributed
    assert dist.is_initialized()
    destroy_distributed()
    assert not dist.is_initialized()
    destroy_distributed()  # nothing left to destroy: no error


def test_destroy_distributed_leaves_the_group_on_every_rank():
    _spawn(_destroy_worker)


def test_destroy_distributed_without_a_group_is_a_no_op():
    import torch.distributed as dist

    from mmps.utils import destroy_distributed
    assert not dist.is_initialized()
    destroy_distributed()
    assert not dist.is_initialized()

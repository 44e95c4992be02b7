# Copyright (c) OpenMMLab. All rights reserved.
"""Train a person search model (MMDetection's tools/train.py, in mmps scope).

Example::

    python tools/train.py configs/dicl_synthetic_prw.py
    bash tools/dist_train.sh configs/dicl_prw.py 4
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmps.registry import RUNNERS
from mmps.engine import trust_local_checkpoints
from mmps.utils import (destroy_distributed, init_cpu_distributed,
                        register_all_modules)

# configs of projects/ import their code from the repository root
# (custom_imports=dict(imports=['projects.MyMethod...'])), which an editable
# install does not put on sys.path
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.append(REPO_ROOT)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a person search model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic-mixed-precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the total batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest '
        'checkpoint of the work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    register_all_modules(init_default_scope=False)
    # the user names the checkpoint: let mmengine training checkpoints load
    # under torch >= 2.6 (see mmps/engine/checkpoint.py)
    trust_local_checkpoints()

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.'
                               'base_batch_size in the config')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    init_cpu_distributed(cfg.launcher)  # gloo where there is no CUDA
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)
    try:
        runner.train()
    finally:
        # every rank leaves the process group before the interpreter exits
        destroy_distributed()


if __name__ == '__main__':
    main()

# Copyright (c) OpenMMLab. All rights reserved.
"""Test a person search model: prints mAP, top-k and detection recall / AP.

Example::

    python tools/test.py configs/dicl_prw.py work_dirs/dicl_prw/epoch_26.pth
    python tools/test.py configs/dicl_synthetic_prw.py CKPT --out results.npz

``--out`` writes the gallery detections, query features and query context in
the format of ``tools/analysis_tools/eval_search.py``. ``--cbgm`` also reports
the search figures re-scored by SeqNet's context bipartite graph matching
(``mAP_cbgm``...; k1 / k2 of SeqNet: 10 / 3 on CUHK-SYSU, 30 / 4 on PRW).
``--show-dir DIR`` draws the ranked
top-10 of the first ``--show-queries`` test queries (default 20) into
``DIR/query_XXXX.jpg``, hits green / red by the ground truth
(``SearchVisualizationHook``). Without a checkpoint the model is
evaluated as initialised (a smoke test of the whole test loop).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
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
    parser = argparse.ArgumentParser(description='Test a person search model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint', nargs='?', help='checkpoint file (omit: as initialised)')
    parser.add_argument('--work-dir', help='the dir for logs and metrics')
    parser.add_argument(
        '--out',
        help='write gallery detections, query features and the query '
        'context (for CBGM) to this .npz')
    parser.add_argument(
        '--cbgm',
        action='store_true',
        help="also report the search figures re-scored by SeqNet's CBGM "
        '(context bipartite graph matching; suffix _cbgm)')
    parser.add_argument(
        '--show-dir',
        help='draw the ranked results of the first test queries into this '
        'folder (query_XXXX.jpg)')
    parser.add_argument(
        '--show-queries',
        type=int,
        default=20,
        help='number of queries drawn with --show-dir (default 20)')
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


def person_search_metrics(evaluator) -> list:
    """The PersonSearchMetric configs of an evaluator config."""
    metrics = evaluator.get('metrics', evaluator) \
        if isinstance(evaluator, dict) else evaluator
    metrics = metrics if isinstance(metrics, (list, tuple)) else [metrics]
    return [
        m for m in metrics
        if str(m.get('type', '')).split('.')[-1] == 'PersonSearchMetric'
    ]


def set_metric_option(evaluator, key: str, value, flag: str) -> None:
    """Set ``key`` of every PersonSearchMetric of an evaluator config.

    Raises:
        ValueError: There is none (``flag`` names the option that needs it).
    """
    metrics = person_search_metrics(evaluator)
    if not metrics:
        raise ValueError(f'{flag} needs a PersonSearchMetric in '
                         'test_evaluator')
    for metric in metrics:
        metric[key] = value


def det_thresh_of(evaluator, default: float = 0.5) -> float:
    """``det_thresh`` of the PersonSearchMetric of an evaluator config."""
    metrics = person_search_metrics(evaluator)
    return float(metrics[0].get('det_thresh', default)) if metrics \
        else default


def add_show_hook(cfg, show_dir: str, num_queries: int) -> None:
    """Add a SearchVisualizationHook writing into ``show_dir``."""
    if num_queries < 1:
        raise ValueError(f'--show-queries must be >= 1, got {num_queries}')
    hook = dict(
        type='SearchVisualizationHook',
        out_dir=osp.abspath(show_dir),
        num_queries=num_queries,
        det_thresh=det_thresh_of(cfg.get('test_evaluator', {})))
    cfg.custom_hooks = list(cfg.get('custom_hooks', None) or []) + [hook]


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
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.checkpoint is None:
        print_log('no checkpoint given: testing the model as initialised',
                  logger='current', level=30)
    if args.out is not None:
        if not args.out.endswith('.npz'):
            raise ValueError(f'--out must be a .npz file, got {args.out}')
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        set_metric_option(cfg.test_evaluator, 'results_file',
                          osp.abspath(args.out), '--out')
    if args.cbgm:
        set_metric_option(cfg.test_evaluator, 'cbgm', True, '--cbgm')

    if args.show_dir is not None:
        add_show_hook(cfg, args.show_dir, args.show_queries)

    init_cpu_distributed(cfg.launcher)  # gloo where there is no CUDA
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)
    try:
        runner.test()
    finally:
        # every rank leaves the process group before the interpreter exits
        destroy_distributed()


if __name__ == '__main__':
    main()

# Copyright (c) OpenMMLab. All rights reserved.
"""DICL's ablation: train and evaluate each variant on the same data.

Every variant is the given DICL config with one change, trained by
``tools/train.py`` in its own process (same seed, same data) and evaluated
at the end of training:

- ``supervised``: full DICL, the memory labelled by the dataset's person
  ids instead of clusters (the fully supervised upper bound);
- ``memory``: memory contrast (+ triplet) with pseudo labels only: no
  instance views, no occlusion, scene features at test time;
- ``many_to_one``: + the instance views and the many-to-one loss (SIC);
- ``dense``: + the dense similarity loss (SIC);
- ``dicl``: + box occlusion (OIC): the config itself.

The figures are those logged by the evaluation at the end of training.
Each variant's last checkpoint is then run once more by ``tools/test.py
--out`` and its detections are scored with random unit features (mean of 5
draws): the random-feature level that the search figures compare to.

Prints one ``name: value`` line per figure (``<variant>_mAP``, ``_top1``,
``_det_ap``, ``_ari`` of the last clustering, ``_random_mAP``,
``_mAP_vs_random``, ``_train_s``), and a Markdown table (``--table FILE``
also writes it).

Example::

    python tools/analysis_tools/dicl_ablation.py configs/dicl_synthetic_prw.py \\
        --work-dir work_dirs/dicl_ablation --table work_dirs/ablation.md
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Callable, Dict

import numpy as np
from mmengine.config import Config

from mmps.utils import register_all_modules, report_figures

#: Variants in the order of the table.
VARIANTS = ('supervised', 'memory', 'many_to_one', 'dense', 'dicl')
DESCRIPTIONS = {
    'supervised': 'fully supervised (person ids)',
    'memory': 'memory contrast only',
    'many_to_one': '+ many-to-one (SIC)',
    'dense': '+ dense (SIC)',
    'dicl': '+ occlusion (OIC) = DICL',
}
#: CPU kernels pinned to AVX2 for every run (as ``make demo`` does): the same
#: floating-point results on any x86-64 CPU with AVX2, where the seeded run
#: otherwise takes AVX-512 kernels on some machines (``--native-kernels``:
#: whatever the CPU offers, faster and machine-dependent).
REPRO_ENV = dict(
    ATEN_CPU_CAPABILITY='avx2',
    ONEDNN_MAX_CPU_ISA='AVX2',
    MKL_CBWR='AVX2',
    OPENBLAS_CORETYPE='Haswell')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _drop_transforms(pipeline: list, *types: str) -> list:
    return [t for t in pipeline if t['type'] not in types]


def _set_pipeline(cfg: Config, fn: Callable[[list], list]) -> None:
    dataset = cfg.train_dataloader.dataset
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset  # wrappers (RepeatDataset...)
    dataset.pipeline = fn(dataset.pipeline)


def variant_config(cfg: Config, variant: str) -> Config:
    """The DICL config ``cfg`` changed into ``variant`` (a copy).

    Args:
        cfg (Config): A DICL config (DICLRoIHead, InstanceViews and
            BoxOcclusion in the training pipeline).
        variant (str): One of :data:`VARIANTS`.

    Returns:
        Config: The variant's config.
    """
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; one of {VARIANTS}')
    cfg = Config(cfg.to_dict())  # a deep copy, _base_ resolved
    head = cfg.model.roi_head
    if variant == 'supervised':
        hooks = [h for h in cfg.custom_hooks if h.type == 'PseudoLabelHook']
        if len(hooks) != 1:
            raise ValueError('the supervised variant needs one '
                             'PseudoLabelHook in custom_hooks')
        hooks[0].label_source = 'person_id'
    if variant in ('memory', 'many_to_one', 'dense'):
        _set_pipeline(cfg, lambda p: _drop_transforms(p, 'BoxOcclusion'))
    if variant in ('memory', 'many_to_one'):
        head.loss_kl = None
    if variant == 'memory':
        head.loss_sim = None
        _set_pipeline(cfg, lambda p: _drop_transforms(p, 'InstanceViews'))
        cfg.model.test_cfg.reid_mode = 'scene'  # no instance branch trained
    return cfg


def last_scalars(work_dir: str) -> Dict[str, float]:
    """The last logged value of every scalar of a run (``scalars.json``)."""
    runs = sorted(d for d in os.listdir(work_dir)
                  if osp.isfile(osp.join(work_dir, d, 'vis_data',
                                         'scalars.json')))
    if not runs:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}')
    last: Dict[str, float] = {}
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            if line.strip():
                last.update(json.loads(line))
    return last


def random_feature_map(cfg: Config, results_file: str,
                       draws: int = 5) -> float:
    """Search mAP of a results file's detections with random features.

    Args:
        cfg (Config): The config whose test split the results belong to.
        results_file (str): A ``tools/test.py --out`` file.
        draws (int): Random draws averaged. Defaults to 5.

    Returns:
        float: The mean mAP (fraction).
    """
    from mmps.evaluation.functional import (PersonSearchProtocol,
                                            align_search_results,
                                            evaluate_person_search,
                                            load_search_results)
    from mmps.registry import DATASETS
    register_all_modules()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    protocol = PersonSearchProtocol.from_data_infos(
        [dataset.get_data_info(i) for i in range(len(dataset))])
    det_img, dets, det_feats, query_feats = align_search_results(
        load_search_results(results_file), protocol, source=results_file)
    rng = np.random.default_rng(0)
    values = []
    for _ in range(draws):
        feats = []
        for shape in (det_feats.shape, query_feats.shape):
            f = rng.standard_normal(shape).astype(np.float32)
            feats.append(f / np.linalg.norm(f, axis=1, keepdims=True))
        values.append(
            evaluate_person_search(protocol, det_img, dets, *feats)['mAP'])
    return float(np.mean(values))


def _run(cmd: list, log_file: str, what: str) -> None:
    env = dict(os.environ)
    if not env.pop('MMPS_NATIVE_KERNELS', ''):
        for key, value in REPRO_ENV.items():
            env.setdefault(key, value)
    with open(log_file, 'w') as log:
        proc = subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{what} failed (exit {proc.returncode}), see '
                           f'{log_file}')


def run_variant(cfg: Config, variant: str, work_dir: str,
                seed: int) -> Dict[str, float]:
    """Train and test ``variant`` with the tools and read its figures."""
    vcfg = variant_config(cfg, variant)
    vcfg.randomness = dict(seed=seed)
    os.makedirs(work_dir, exist_ok=True)
    cfg_file = osp.join(work_dir, f'{variant}.py')
    vcfg.dump(cfg_file)
    tools = osp.join(REPO, 'tools')
    start = time.perf_counter()
    _run([sys.executable, osp.join(tools, 'train.py'), cfg_file,
          '--work-dir', work_dir], osp.join(work_dir, 'train.log'),
         f'{variant}: training')
    seconds = time.perf_counter() - start
    scalars = last_scalars(work_dir)
    if 'mAP' not in scalars:
        raise RuntimeError(f'{variant}: no evaluation in {work_dir}; the '
                           'config must evaluate at the end of training')
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    results_file = osp.join(work_dir, 'results.npz')
    _run([sys.executable, osp.join(tools, 'test.py'), cfg_file, checkpoint,
          '--work-dir', osp.join(work_dir, 'test'), '--out', results_file],
         osp.join(work_dir, 'test.log'), f'{variant}: testing')
    random_map = random_feature_map(vcfg, results_file)
    return dict(
        mAP=100 * scalars['mAP'],
        top1=100 * scalars['top-1'],
        det_ap=100 * scalars['det_ap'],
        ari=scalars.get('pseudo_labels/ari', float('nan')),
        random_mAP=100 * random_map,
        mAP_vs_random=scalars['mAP'] / max(random_map, 1e-12),
        train_s=seconds)


def markdown_table(results: Dict[str, Dict[str, float]]) -> str:
    lines = [
        '| variant | mAP | top-1 | det AP | cluster ARI | random-feature '
        'mAP | mAP / random | train time |',
        '|---|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for name, r in results.items():
        lines.append(f'| {DESCRIPTIONS[name]} | {r["mAP"]:.2f} | '
                     f'{r["top1"]:.2f} | {r["det_ap"]:.2f} | '
                     f'{r["ari"]:.3f} | {r["random_mAP"]:.2f} | '
                     f'{r["mAP_vs_random"]:.1f}x | {r["train_s"]:.0f} s |')
    return '\n'.join(lines)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?',
                        default='configs/dicl_synthetic_prw.py')
    parser.add_argument('--work-dir', default='work_dirs/dicl_ablation')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=VARIANTS)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--native-kernels',
        action='store_true',
        help='do not pin the CPU kernels to AVX2 (faster; the figures then '
        'depend on the CPU model)')
    parser.add_argument('--table', help='also write the Markdown table here')
    parser.add_argument('--json', help='also write the figures to this file')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.native_kernels:
        os.environ['MMPS_NATIVE_KERNELS'] = '1'
    cfg = Config.fromfile(args.config)
    results = {}
    for variant in args.variants:
        results[variant] = run_variant(cfg, variant,
                                       osp.join(args.work_dir, variant),
                                       args.seed)
        print(f'{variant}: ' + ', '.join(
            f'{k} {v:.3f}' for k, v in results[variant].items()),
            file=sys.stderr, flush=True)
    figures = {'config': args.config, 'seed': args.seed}
    for variant, r in results.items():
        for key, value in r.items():
            figures[f'{variant}_{key}'] = value
    report_figures(figures, args.json)
    table = markdown_table(results)
    print(table)
    if args.table:
        with open(args.table, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()

# Copyright (c) OpenMMLab. All rights reserved.
"""Training step time of DICL against the plain detector.

Times, in one run, on the same training batches (models interleaved batch
by batch, so that machine noise hits them alike), one optimiser step
(``train_step``: preprocessing, forward, backward, SGD update) of:

- ``plain``: the detector alone (``PersonSearchDetector`` with a
  ``PersonSearchRoIHead``: RPN and box losses, no re-id loss);
- ``dicl_no_views``: DICL's RoI head without the instance branch (memory
  and triplet losses on ``p``);
- ``dicl``: full DICL (instance views, many-to-one, dense, memory,
  triplet and the memory update).

The DICL memory is sized from the dataset and filled with random unit
features and two-slot clusters. Prints one ``name: value`` line per figure:
seconds per step and the ratio of each to ``plain``. Without
``--data-root`` a synthetic PRW-format root is generated in a temporary
folder.

Example::

    python tools/analysis_tools/benchmark_train.py configs/dicl_synthetic_prw.py
"""
import argparse
import copy
import tempfile
import time

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper

from mmps.registry import DATASETS, MODELS
from mmps.utils import register_all_modules, report_figures

MODELS_TIMED = ('plain', 'dicl_no_views', 'dicl')
DICL_KEYS = ('memory', 'loss_id', 'loss_sim', 'loss_kl', 'loss_triplet',
             'label_source')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?',
                        default='configs/dicl_synthetic_prw.py')
    parser.add_argument('--data-root', help='dataset root (train split)')
    parser.add_argument('--num-iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--json', help='also write the figures to this file')
    return parser.parse_args()


def plain_model_cfg(model_cfg):
    """The same detector without DICL's re-id objectives."""
    cfg = copy.deepcopy(model_cfg)
    cfg.type = 'PersonSearchDetector'
    cfg.roi_head.type = 'PersonSearchRoIHead'
    for key in DICL_KEYS:
        cfg.roi_head.pop(key, None)
    return cfg


def build_model(model_cfg, optim_cfg, seed, num_slots=None):
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    memory = getattr(model.roi_head, 'memory', None)
    if memory is not None:
        memory.resize_(num_slots)
        memory.init_features(
            torch.arange(num_slots), torch.randn(num_slots, memory.feat_dim))
        memory.set_labels(torch.arange(num_slots) // 2)
    model.train()
    return model, build_optim_wrapper(model, copy.deepcopy(optim_cfg))


def without_views(data):
    data = copy.deepcopy(data)
    for sample in data['data_samples']:
        if 'crops' in sample.gt_instances:
            del sample.gt_instances.crops
    return data


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    tmp = None
    data_root = args.data_root
    if data_root is None:
        from mmps.datasets.synthetic import make_synthetic_prw
        tmp = tempfile.TemporaryDirectory()
        data_root = make_synthetic_prw(
            tmp.name, seed=args.seed, num_images=24,
            image_size=(120, 200)).root
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.data_root = data_root
    dataset = DATASETS.build(ds_cfg)
    batch_size = cfg.train_dataloader.batch_size
    num = (args.warmup + args.num_iters) * batch_size
    torch.manual_seed(args.seed)
    samples = [dataset[i % len(dataset)] for i in range(num)]
    batches = [
        pseudo_collate(samples[i:i + batch_size])
        for i in range(0, num, batch_size)
    ]

    models = dict(
        plain=build_model(
            plain_model_cfg(cfg.model), cfg.optim_wrapper, args.seed),
        dicl_no_views=build_model(cfg.model, cfg.optim_wrapper, args.seed,
                                  dataset.num_instances),
        dicl=build_model(cfg.model, cfg.optim_wrapper, args.seed,
                         dataset.num_instances))
    times = {name: [] for name in MODELS_TIMED}
    for it, batch in enumerate(batches):
        for name in MODELS_TIMED:
            model, optim_wrapper = models[name]
            data = copy.deepcopy(batch) if name == 'dicl' else \
                without_views(batch)
            start = time.perf_counter()
            model.train_step(data, optim_wrapper)
            if it >= args.warmup:
                times[name].append(time.perf_counter() - start)

    figures = dict(
        config=args.config,
        batch_size=batch_size,
        num_iters=args.num_iters,
        threads=torch.get_num_threads())
    for name in MODELS_TIMED:
        figures[f'{name}_step_s'] = sum(times[name]) / len(times[name])
    for name in MODELS_TIMED[1:]:
        figures[f'{name}_vs_plain'] = \
            figures[f'{name}_step_s'] / figures['plain_step_s']
    report_figures(figures, args.json)
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    main()

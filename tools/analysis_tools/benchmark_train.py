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
features and two-slot clusters. The batches are loaded and augmented
once before timing (data loading is not timed). Prints one ``name: value``
line per figure: seconds per step, steps per second, the ratio of each to
``plain`` (when ``plain`` is timed) and, on CUDA, the peak GPU memory of each
model's steps. Without ``--data-root`` a synthetic PRW-format root with
``--frame-size`` frames is generated in a temporary folder.

Examples::

    python tools/analysis_tools/benchmark_train.py configs/dicl_synthetic_prw.py
    # the reference config at reference scale on one GPU (1920x1080 frames)
    python tools/analysis_tools/benchmark_train.py configs/dicl_prw.py \
        --device cuda --batch-size 4 --frame-size 1920 1080 --models dicl \
        --amp
"""
import argparse
import copy
import tempfile
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper

from mmps.registry import DATASETS, MODELS
from mmps.testing import prepare_instance_memory
from mmps.utils import register_all_modules, report_figures

MODELS_TIMED = ('plain', 'dicl_no_views', 'dicl')
DICL_KEYS = ('memory', 'loss_id', 'loss_sim', 'loss_kl', 'loss_triplet')


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
    parser.add_argument('--device', default='cpu', help="e.g. 'cuda'")
    parser.add_argument(
        '--batch-size', type=int, help="default: the config's train batch")
    parser.add_argument(
        '--frame-size', type=int, nargs=2, default=(200, 120),
        metavar=('W', 'H'),
        help='frame size of the generated synthetic set (default 200 120)')
    parser.add_argument(
        '--num-frames', type=int, default=24,
        help='frames of the generated synthetic set (default 24)')
    parser.add_argument(
        '--models', nargs='+', choices=MODELS_TIMED, default=MODELS_TIMED,
        help='the models to time (default: all)')
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed precision (AmpOptimWrapper, dynamic loss scale), as '
        'tools/train.py --amp')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, as tools/train.py (e.g. '
        'model.backbone.init_cfg=None: no ImageNet checkpoint)')
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


def build_model(model_cfg, optim_cfg, seed, device, num_slots=None):
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    if num_slots is not None:
        prepare_instance_memory(model, num_slots, seed=seed)
    model.to(device).train()
    return model, build_optim_wrapper(model, copy.deepcopy(optim_cfg))


def synchronize(device: str) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


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
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    cuda = torch.device(args.device).type == 'cuda'
    tmp = None
    data_root = args.data_root
    if data_root is None:
        from mmps.datasets.synthetic import make_synthetic_prw
        tmp = tempfile.TemporaryDirectory()
        width, height = args.frame_size
        data_root = make_synthetic_prw(
            tmp.name, seed=args.seed, num_images=args.num_frames,
            image_size=(height, width)).root
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.data_root = data_root
    dataset = DATASETS.build(ds_cfg)
    batch_size = args.batch_size or cfg.train_dataloader.batch_size
    num = (args.warmup + args.num_iters) * batch_size
    torch.manual_seed(args.seed)
    samples = [dataset[i % len(dataset)] for i in range(num)]
    batches = [
        pseudo_collate(samples[i:i + batch_size])
        for i in range(0, num, batch_size)
    ]

    timed = [name for name in MODELS_TIMED if name in args.models]
    models = {
        name: build_model(
            plain_model_cfg(cfg.model) if name == 'plain' else cfg.model,
            cfg.optim_wrapper, args.seed, args.device,
            None if name == 'plain' else dataset.num_instances)
        for name in timed
    }
    times = {name: [] for name in timed}
    peak = {name: 0 for name in timed}
    for it, batch in enumerate(batches):
        for name in timed:
            model, optim_wrapper = models[name]
            data = copy.deepcopy(batch) if name == 'dicl' else \
                without_views(batch)
            if cuda:
                torch.cuda.reset_peak_memory_stats(args.device)
            synchronize(args.device)
            start = time.perf_counter()
            model.train_step(data, optim_wrapper)
            synchronize(args.device)
            if it >= args.warmup:
                times[name].append(time.perf_counter() - start)
                if cuda:
                    peak[name] = max(
                        peak[name],
                        torch.cuda.max_memory_allocated(args.device))

    figures = dict(
        config=args.config,
        device=args.device,
        amp=int(args.amp),
        batch_size=batch_size,
        input_pixels=int(sum(
            s['inputs'].shape[-2] * s['inputs'].shape[-1]
            for s in samples) / len(samples)),
        num_iters=args.num_iters,
        threads=torch.get_num_threads())
    for name in timed:
        figures[f'{name}_step_s'] = sum(times[name]) / len(times[name])
        figures[f'{name}_it_per_s'] = 1 / figures[f'{name}_step_s']
        if cuda:
            figures[f'{name}_peak_mem_gib'] = peak[name] / 2**30
    if 'plain' in timed:
        for name in timed[1:]:
            figures[f'{name}_vs_plain'] = \
                figures[f'{name}_step_s'] / figures['plain_step_s']
    report_figures(figures, args.json)
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    main()

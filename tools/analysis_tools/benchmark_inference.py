# Copyright (c) OpenMMLab. All rights reserved.
"""Inference speed of a person search detector in its re-id modes.

Times, on the same gallery images and in one run (modes interleaved image by
image, so that machine noise hits them alike):

- ``plain``: the detector alone (RPN + box head, no re-id feature);
- ``scene``: + the scene embedding ``p`` of the returned detections;
- ``fused``: + the crop pass ``g`` for the boxes that survive score
  threshold and NMS (mmps's default);
- ``fused_all_proposals``: the reference behaviour, ``p`` and a crop pass for
  every proposal before NMS.

Prints one ``name: value`` line per figure: seconds per image, images per
second, the ratio of each mode to ``plain`` and, on CUDA, the peak GPU
memory. Without ``--data-root`` a synthetic PRW-format root with
``--frame-size`` frames is generated in a temporary folder.

Examples::

    python tools/analysis_tools/benchmark_inference.py \\
        configs/dicl_synthetic_prw.py --checkpoint work_dirs/x/epoch_8.pth
    # the reference config on one GPU: 1920x1080 frames tested at 1500x900
    python tools/analysis_tools/benchmark_inference.py configs/dicl_prw.py \\
        --device cuda --frame-size 1920 1080 --scale 1500 900
"""
import argparse
import tempfile
import time

import torch
from mmdet.models.detectors import TwoStageDetector
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint

from mmps.registry import DATASETS, MODELS
from mmps.engine import trust_local_checkpoints
from mmps.utils import register_all_modules, report_figures

MODES = ('plain', 'scene', 'fused', 'fused_all_proposals')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?',
                        default='configs/dicl_synthetic_prw.py')
    parser.add_argument('--checkpoint', help='weights (default: as built)')
    parser.add_argument('--data-root', help='dataset root (test split used)')
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--scale', type=int, nargs=2, metavar=('W', 'H'),
        help='test scale of the Resize step (e.g. 1500 900, the reference '
        "test scale); default: the config's")
    parser.add_argument(
        '--frame-size', type=int, nargs=2, metavar=('W', 'H'),
        help='frame size of the generated synthetic set (default: the '
        "generator's, 400 240)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, as tools/train.py (e.g. '
        'model.backbone.init_cfg=None: no ImageNet checkpoint)')
    parser.add_argument('--json', help='also write the figures to this file')
    return parser.parse_args()


def build_batches(cfg, data_root: str, num_images: int, model,
                  scale=None) -> list:
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = data_root
    if scale is not None:
        resize = [t for t in ds_cfg.pipeline if t.type == 'Resize']
        assert resize, 'the test pipeline has no Resize step to rescale'
        resize[0].scale = tuple(scale)
    dataset = DATASETS.build(ds_cfg)
    batches = []
    for i in range(min(num_images, dataset.num_gallery)):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
        batches.append((data['inputs'], data['data_samples']))
    return batches


def run_mode(model, mode: str, inputs, samples):
    with torch.no_grad():
        if mode == 'plain':
            return TwoStageDetector.predict(model, inputs, samples)
        model.test_cfg['reid_mode'] = mode
        return model.predict(inputs, samples)


def main():
    args = parse_args()
    register_all_modules()
    # the user names the checkpoint: let mmengine training checkpoints load
    # under torch >= 2.6 (see mmps/engine/checkpoint.py)
    trust_local_checkpoints()
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = MODELS.build(cfg.model).to(args.device).eval()
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location=args.device)
    elif cfg.model.backbone.get('init_cfg') is None:
        model.init_weights()  # nothing to load: the configured random init

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if root is None:
            from mmps.datasets.synthetic import make_synthetic_prw
            size = {} if args.frame_size is None else dict(
                image_size=tuple(args.frame_size[::-1]))
            root = make_synthetic_prw(tmp, seed=args.seed, **size).root
        batches = build_batches(cfg, root, args.num_images, model,
                                args.scale)

    cuda = torch.device(args.device).type == 'cuda'

    def synchronize():
        if cuda:
            torch.cuda.synchronize(args.device)

    times = {m: 0.0 for m in MODES}
    dets = {m: 0 for m in MODES}
    for inputs, samples in batches[:1]:  # warm-up
        for mode in MODES:
            run_mode(model, mode, inputs, samples)
    if cuda:
        torch.cuda.reset_peak_memory_stats(args.device)
    step = 0
    for _ in range(args.repeats):
        for inputs, samples in batches:
            step += 1  # rotate the order so that no mode always runs first
            for mode in MODES[step % 4:] + MODES[:step % 4]:
                synchronize()
                start = time.perf_counter()
                out = run_mode(model, mode, inputs, samples)
                synchronize()
                times[mode] += time.perf_counter() - start
                dets[mode] += len(out[0].pred_instances)
    n = args.repeats * len(batches)
    figures = {'num_images': len(batches), 'repeats': args.repeats,
               'input_pixels': int(batches[0][0].shape[-2] *
                                   batches[0][0].shape[-1]),
               'dets_per_img': dets['fused'] / n,
               'proposals_per_img': cfg.model.test_cfg.rpn.max_per_img}
    for mode in MODES:
        figures[f'{mode}_s_per_img'] = times[mode] / n
        figures[f'{mode}_img_per_s'] = n / times[mode]
    for mode in MODES[1:]:
        figures[f'{mode}_ratio'] = times[mode] / times['plain']
    if cuda:
        figures['peak_mem_gib'] = \
            torch.cuda.max_memory_allocated(args.device) / 2**30
    report_figures(figures, args.json)


if __name__ == '__main__':
    main()

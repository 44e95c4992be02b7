# Copyright (c) OpenMMLab. All rights reserved.
"""Save pictures of training samples as the model sees them: the augmented
scene after the train pipeline with its GT boxes, and the instance crops.

Each picture is the packed sample of ``train_dataloader.dataset``: the scene
tensor (resized, flipped, with :class:`BoxOcclusion`'s mean-filled cells
visible on the boxes it masked) with its GT boxes, green, or red when
occluded (``gt_instances.occluded``), labelled ``#k pid`` (``pid -`` when
unlabeled), ignored boxes in grey; and, to its right, the instance views of
:class:`InstanceViews` (``gt_instances.crops``, cut before the occlusion)
framed in the colour of their box.

Example::

    python tools/analysis_tools/browse_dataset.py \\
        configs/dicl_synthetic_prw.py --output-dir work_dirs/browse --num 8
"""
import argparse
import math
import os
import os.path as osp
from typing import Optional

import cv2
import numpy as np
from mmengine.config import Config, DictAction

from mmps.registry import DATASETS
from mmps.utils import register_all_modules

GREEN = (0, 200, 0)  # BGR
RED = (0, 0, 230)
GREY = (160, 160, 160)
TITLE_H = 22  # px, the caption bar above the picture
CAPTION_H = 18  # px, under each crop
GAP = 6  # px, between the crops


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--output-dir',
        default='work_dirs/browse_dataset',
        help='folder of the pictures')
    parser.add_argument(
        '--num', type=int, default=10, help='number of samples (first ones)')
    parser.add_argument(
        '--data-root', help='override the train dataset\'s data root')
    parser.add_argument(
        '--seed', type=int, default=None, help='seed of the augmentations')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    return parser.parse_args()


def _put_text(img: np.ndarray, text: str, org, color=(255, 255, 255),
              scale: float = 0.45) -> None:
    """Text with a dark outline, readable on any background."""
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1,
                cv2.LINE_AA)


def _as_numpy(value) -> Optional[np.ndarray]:
    if value is None:
        return None
    value = getattr(value, 'tensor', value)  # HorizontalBoxes
    return value.detach().cpu().numpy() if hasattr(value, 'detach') else \
        np.asarray(value)


def draw_sample(sample: dict) -> np.ndarray:
    """One picture (BGR uint8) of a packed person search sample.

    Args:
        sample (dict): ``inputs`` (C, H, W) uint8 tensor and
            ``data_samples`` (``DetDataSample`` with ``gt_instances``:
            ``bboxes`` and, when present, ``crops`` (N, C, h, w),
            ``occluded`` (N, ), ``person_ids`` (N, ); ``ignored_instances``).

    Returns:
        np.ndarray: (H', W', 3) picture: scene with boxes, then the crops.
    """
    data_sample = sample['data_samples']
    scene = np.ascontiguousarray(
        sample['inputs'].permute(1, 2, 0).cpu().numpy()).astype(np.uint8)
    if scene.shape[2] == 1:
        scene = cv2.cvtColor(scene, cv2.COLOR_GRAY2BGR)
    gt = data_sample.gt_instances
    boxes = _as_numpy(gt.bboxes).reshape(-1, 4)
    num = len(boxes)
    occluded = _as_numpy(gt.get('occluded', None))
    occluded = np.zeros(num, bool) if occluded is None else \
        occluded.astype(bool)
    pids = _as_numpy(gt.get('person_ids', None))
    crops = _as_numpy(gt.get('crops', None))

    ignored = data_sample.get('ignored_instances', None)
    if ignored is not None and 'bboxes' in ignored:
        for x1, y1, x2, y2 in _as_numpy(ignored.bboxes).reshape(-1, 4):
            cv2.rectangle(scene, (int(x1), int(y1)), (int(x2), int(y2)),
                          GREY, 1)
    labels = []
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        color = RED if occluded[k] else GREEN
        pid = '-' if pids is None or pids[k] < 0 else str(int(pids[k]))
        labels.append(f'#{k} {pid}')
        cv2.rectangle(scene, (int(round(x1)), int(round(y1))),
                      (int(round(x2)), int(round(y2))), color, 2)
        _put_text(scene, labels[k], (int(x1) + 2, max(int(y1) - 4, 12)),
                  color)

    height, width = scene.shape[:2]
    panel = None
    if crops is not None and len(crops):
        crops = crops.transpose(0, 2, 3, 1).astype(np.uint8)
        if crops.shape[3] == 1:
            crops = np.repeat(crops, 3, axis=3)
        ch, cw = crops.shape[1:3]
        cell_h, cell_w = ch + CAPTION_H, cw + GAP
        rows = max(1, min(len(crops), height // cell_h))
        cols = int(math.ceil(len(crops) / rows))
        panel = np.full((max(height, rows * cell_h), cols * cell_w + GAP, 3),
                        40, np.uint8)
        for k, crop in enumerate(crops):
            r, c = k % rows, k // rows
            y, x = r * cell_h, GAP + c * cell_w
            panel[y:y + ch, x:x + cw] = crop
            color = RED if occluded[k] else GREEN
            cv2.rectangle(panel, (x, y), (x + cw - 1, y + ch - 1), color, 2)
            _put_text(panel, labels[k], (x + 2, y + ch + 13), color)
        canvas_h = panel.shape[0]
    else:
        canvas_h = height
    canvas = np.full((canvas_h, width, 3), 40, np.uint8)
    canvas[:height] = scene
    if panel is not None:
        canvas = np.concatenate([canvas, panel], axis=1)

    meta = data_sample.metainfo
    title = (f'{meta.get("img_name", osp.basename(meta.get("img_path", "")))}'
             f'  {height}x{width}  flip: {meta.get("flip", False)}  boxes: '
             f'{num}  occluded [red]: {int(occluded.sum())}')
    bar = np.full((TITLE_H, canvas.shape[1], 3), 20, np.uint8)
    _put_text(bar, title, (4, 15), scale=0.45)
    return np.concatenate([bar, canvas], axis=0)


def _set_data_root(ds_cfg, data_root: str) -> None:
    """Set the data root of a dataset config, through dataset wrappers."""
    while 'data_root' not in ds_cfg and 'dataset' in ds_cfg:
        ds_cfg = ds_cfg['dataset']
    ds_cfg['data_root'] = data_root


def main():
    args = parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    ds_cfg = cfg.train_dataloader.dataset
    if args.data_root:
        _set_data_root(ds_cfg, args.data_root)
    if args.seed is not None:
        np.random.seed(args.seed)
    dataset = DATASETS.build(ds_cfg)
    os.makedirs(args.output_dir, exist_ok=True)
    for idx in range(min(args.num, len(dataset))):
        sample = dataset[idx]
        name = sample['data_samples'].metainfo.get(
            'img_name', osp.basename(sample['data_samples'].img_path))
        out_file = osp.join(args.output_dir,
                            f'{idx:04d}_{osp.splitext(name)[0]}.png')
        cv2.imwrite(out_file, draw_sample(sample))
        print(out_file)


if __name__ == '__main__':
    main()

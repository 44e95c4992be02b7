# Copyright (c) OpenMMLab. All rights reserved.
"""A tiny synthetic PRW root and a shrunk DICL config for search tests."""
import os.path as osp

from mmps.datasets.synthetic import make_synthetic_prw
from mmps.testing import get_config, shrink_person_search_cfg


def make_tiny_prw(folder: str) -> str:
    """A 12-frame synthetic PRW root (120x200 frames); returns its path."""
    return make_synthetic_prw(
        folder, seed=4, num_images=12, num_ids=4,
        image_size=(120, 200)).root


def tiny_search_config(root: str, max_dets: int = 8):
    """``configs/dicl_synthetic_prw.py`` shrunk for CPU tests on ``root``.

    A narrow backbone, at most ``max_dets`` detections per image and test
    images kept at their own 200x120 size.
    """
    cfg = get_config('dicl_synthetic_prw.py')
    shrink_person_search_cfg(cfg.model)
    cfg.model.test_cfg.rcnn.max_per_img = max_dets
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (200, 120)
    for name in ('train_dataloader', 'test_dataloader', 'val_dataloader'):
        cfg[name].dataset.data_root = osp.join(str(root), '')
    cfg.custom_hooks = []
    return cfg


def read_queries(root: str) -> list:
    """``(pid, image path, (x1, y1, x2, y2))`` per line of query_info.txt."""
    queries = []
    with open(osp.join(root, 'query_info.txt')) as f:
        for line in f:
            if line.strip():
                pid, x, y, w, h, name = line.split()
                x, y, w, h = map(float, (x, y, w, h))
                queries.append((int(pid),
                                osp.join(root, 'frames', name + '.jpg'),
                                (x, y, x + w, y + h)))
    return queries

# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmps.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BoxOcclusion(BaseTransform):
    """Occlusion-invariant contrast (OIC): mask random cells of GT boxes.

    For each GT box, with probability ``prob``, the box is split into a
    ``grid`` of cells (rows x columns) and ``num_cells`` distinct random cells
    are filled with the image's per-channel mean (computed before any
    masking). Only the scene image changes: put :class:`InstanceViews` before
    this transform so that the instance views stay un-masked and pull the
    masked proposals towards them.

    A box narrower or shorter than ``min_size`` pixels is skipped (the
    reference stopped masking the rest of the image at such a box).

    Required keys: ``img``, ``gt_bboxes``. Modified: ``img``.
    Added: ``gt_occluded`` (N,) bool, which boxes were masked.

    Args:
        grid (Sequence[int]): (rows, columns). Defaults to (14, 6).
        num_cells (int): Cells filled per masked box. Defaults to 2.
        prob (float): Probability to mask a box. Defaults to 0.5.
        min_size (float): Smaller boxes are skipped. Defaults to 4.
    """

    def __init__(self,
                 grid: Sequence[int] = (14, 6),
                 num_cells: int = 2,
                 prob: float = 0.5,
                 min_size: float = 4.) -> None:
        assert len(grid) == 2 and min(grid) > 0, grid
        assert 0 < num_cells <= grid[0] * grid[1], num_cells
        assert 0 <= prob <= 1, prob
        self.grid = tuple(int(g) for g in grid)
        self.num_cells = int(num_cells)
        self.prob = prob
        self.min_size = min_size

    def transform(self, results: dict) -> dict:
        img = results['img']
        boxes = results['gt_bboxes']
        boxes = np.asarray(getattr(boxes, 'tensor', boxes),
                           np.float64).reshape(-1, 4)
        height, width = img.shape[:2]
        mean = img.reshape(height * width, -1).mean(0).astype(img.dtype)
        rows, cols = self.grid
        occluded = np.zeros(len(boxes), bool)
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            if x2 - x1 < self.min_size or y2 - y1 < self.min_size:
                continue
            if np.random.rand() >= self.prob:
                continue
            ys = np.clip(np.round(np.linspace(y1, y2, rows + 1)), 0,
                         height).astype(int)
            xs = np.clip(np.round(np.linspace(x1, x2, cols + 1)), 0,
                         width).astype(int)
            for cell in np.random.choice(rows * cols, self.num_cells,
                                         replace=False):
                r, c = divmod(int(cell), cols)
                img[ys[r]:ys[r + 1], xs[c]:xs[c + 1]] = mean
            occluded[k] = True
        results['img'] = img
        results['gt_occluded'] = occluded
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(grid={self.grid}, num_cells='
                f'{self.num_cells}, prob={self.prob}, min_size={self.min_size})')

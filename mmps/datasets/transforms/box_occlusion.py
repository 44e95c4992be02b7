# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmps.registry import TRANSFORMS

#: Values of ``BoxOcclusion(mode=...)``: how the cells of a box are laid out.
OCCLUSION_MODES = ('reference', 'grid')


@TRANSFORMS.register_module()
class BoxOcclusion(BaseTransform):
    """Occlusion-invariant contrast (OIC): mask random cells of GT boxes.

    For each GT box, with probability ``prob``, ``num_cells`` cells of a
    ``grid`` (rows x columns) over the box are filled with the image's
    per-channel mean (computed before any masking). Only the scene image
    changes: put :class:`InstanceViews` before this transform so that the
    instance views stay un-masked and pull the masked proposals towards them.

    Two layouts of the cells (``mode``):

    - ``'reference'`` (default, the authors' code): the box is taken in
      whole pixels as ``int(box + 1)``; a cell is ``int(h / rows)`` x
      ``int(w / cols)`` pixels, anchored at the top-left of the box, so that
      the grid leaves the remainder of the box at its right and bottom
      uncovered; the ``num_cells`` cells are drawn *with replacement* (row
      and column indices independently), so both may be the same cell. The
      random draws come in the reference's order: the masking coin, then the
      columns, then the rows. A box shorter than ``rows`` (narrower than
      ``cols``) pixels has empty cells: nothing is masked.
    - ``'grid'``: the box is split by a rounded ``linspace`` grid that covers
      it exactly, and ``num_cells`` *distinct* cells are filled.

    Deviations from the authors' code, kept on purpose (both modes):

    - the fill is the mean of this image; the reference takes the mean over
      the zero-padded, normalised batch tensor, so that the fill depends on
      the other images of the batch and on the padding: a batching artefact;
    - a box narrower or shorter than ``min_size`` pixels is skipped; the
      reference's ``break`` there stopped the masking of every later box of
      the image.

    Required keys: ``img``, ``gt_bboxes``. Modified: ``img``.
    Added: ``gt_occluded`` (N,) bool, which boxes had pixels masked.

    Args:
        grid (Sequence[int]): (rows, columns). Defaults to (14, 6).
        num_cells (int): Cells filled per masked box. Defaults to 2.
        prob (float): Probability to mask a box. Defaults to 0.5.
        min_size (float): Smaller boxes are skipped. Defaults to 4.
        mode (str): ``'reference'`` or ``'grid'``.
            Defaults to ``'reference'``.
    """

    def __init__(self,
                 grid: Sequence[int] = (14, 6),
                 num_cells: int = 2,
                 prob: float = 0.5,
                 min_size: float = 4.,
                 mode: str = 'reference') -> None:
        assert len(grid) == 2 and min(grid) > 0, grid
        assert 0 < num_cells <= grid[0] * grid[1], num_cells
        assert 0 <= prob <= 1, prob
        if mode not in OCCLUSION_MODES:
            raise ValueError(f'BoxOcclusion: mode must be one of '
                             f'{OCCLUSION_MODES}, got {mode!r}')
        self.grid = tuple(int(g) for g in grid)
        self.num_cells = int(num_cells)
        self.prob = prob
        self.min_size = min_size
        self.mode = mode

    def pixel_box(self, box: np.ndarray) -> np.ndarray:
        """The box as the mode reads it: ``int(box + 1)`` for the reference,
        as given for the grid."""
        box = np.asarray(box, np.float64)
        return (box + 1).astype(int) if self.mode == 'reference' else box

    def cells(self, box: np.ndarray, height: int,
              width: int) -> Sequence[tuple]:
        """Draw the masked cells of one box (after its coin came up).

        Args:
            box (np.ndarray): (4, ) x1, y1, x2, y2 from :meth:`pixel_box`.
            height (int): Image height.
            width (int): Image width.

        Returns:
            list[tuple[int, int, int, int]]: ``(y1, y2, x1, x2)`` pixel
            ranges, clipped to the image (possibly empty).
        """
        rows, cols = self.grid
        x1, y1, x2, y2 = box.tolist()
        if self.mode == 'reference':
            ch, cw = int((y2 - y1) / rows), int((x2 - x1) / cols)
            xs = np.random.randint(cols, size=self.num_cells) * cw
            ys = np.random.randint(rows, size=self.num_cells) * ch
            y_end, x_end = min(y2, height), min(x2, width)
            return [(min(y1 + y, y_end), min(y1 + y + ch, y_end),
                     min(x1 + x, x_end), min(x1 + x + cw, x_end))
                    for x, y in zip(xs.tolist(), ys.tolist())]
        ys = np.clip(np.round(np.linspace(y1, y2, rows + 1)), 0,
                     height).astype(int)
        xs = np.clip(np.round(np.linspace(x1, x2, cols + 1)), 0,
                     width).astype(int)
        out = []
        for cell in np.random.choice(
                rows * cols, self.num_cells, replace=False):
            r, c = divmod(int(cell), cols)
            out.append((ys[r], ys[r + 1], xs[c], xs[c + 1]))
        return out

    def transform(self, results: dict) -> dict:
        img = results['img']
        boxes = results['gt_bboxes']
        boxes = np.asarray(getattr(boxes, 'tensor', boxes),
                           np.float64).reshape(-1, 4)
        height, width = img.shape[:2]
        mean = img.reshape(height * width, -1).mean(0).astype(img.dtype)
        occluded = np.zeros(len(boxes), bool)
        for k, box in enumerate(boxes):
            box = self.pixel_box(box)
            x1, y1, x2, y2 = box
            if x2 - x1 < self.min_size or y2 - y1 < self.min_size:
                continue
            if np.random.rand() >= self.prob:
                continue
            for y1, y2, x1, x2 in self.cells(box, height, width):
                if y2 > y1 and x2 > x1:
                    img[y1:y2, x1:x2] = mean
                    occluded[k] = True
        results['img'] = img
        results['gt_occluded'] = occluded
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(grid={self.grid}, num_cells='
                f'{self.num_cells}, prob={self.prob}, min_size={self.min_size}'
                f', mode={self.mode!r})')

# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmps.registry import TRANSFORMS


@TRANSFORMS.register_module()
class InstanceViews(BaseTransform):
    """Crop every GT box of the augmented scene into a fixed-size view.

    The Siamese instance branch of DICL (SIC) embeds each person from a crop
    of the same augmented image the scene branch sees. Put this transform
    after the geometric augmentation (resize, flip) and *before*
    :class:`BoxOcclusion`, so that crops show the un-masked person.

    Required keys: ``img``, ``gt_bboxes``.
    Added keys: ``gt_crops`` (N, 3, h, w) uint8, one view per box, aligned
    with ``gt_bboxes`` (``PackPersonSearchInputs`` packs it as
    ``gt_instances.crops``).

    Optional augmentation of the instance branch alone (all off by default,
    as in the reference):

    - ``scale_jitter`` s: box width and height scaled by U(1 - s, 1 + s);
    - ``shift_jitter`` t: box centre moved by U(-t, t) x (w, h);
    - ``color_jitter`` c: per crop, pixel values x U(1 - c, 1 + c) (contrast)
      plus U(-c, c) x 255 (brightness).

    Args:
        crop_size (Sequence[int]): (h, w) of the views. Defaults to (224, 96).
        scale_jitter (float): See above. Defaults to 0.
        shift_jitter (float): See above. Defaults to 0.
        color_jitter (float): See above. Defaults to 0.
    """

    def __init__(self,
                 crop_size: Sequence[int] = (224, 96),
                 scale_jitter: float = 0.,
                 shift_jitter: float = 0.,
                 color_jitter: float = 0.) -> None:
        assert len(crop_size) == 2 and min(crop_size) > 0, crop_size
        assert 0 <= scale_jitter < 1 and shift_jitter >= 0 and \
            color_jitter >= 0
        self.crop_size = tuple(int(s) for s in crop_size)
        self.scale_jitter = scale_jitter
        self.shift_jitter = shift_jitter
        self.color_jitter = color_jitter

    def _jitter(self, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = box
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        if self.scale_jitter:
            w *= np.random.uniform(1 - self.scale_jitter, 1 + self.scale_jitter)
            h *= np.random.uniform(1 - self.scale_jitter, 1 + self.scale_jitter)
        if self.shift_jitter:
            cx += np.random.uniform(-self.shift_jitter, self.shift_jitter) * w
            cy += np.random.uniform(-self.shift_jitter, self.shift_jitter) * h
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def crop(self, img: np.ndarray, box: np.ndarray) -> np.ndarray:
        """One (h, w, C) view of ``box`` (x1, y1, x2, y2 pixels)."""
        height, width = img.shape[:2]
        x1, y1 = np.floor(np.maximum(box[:2], 0)).astype(int)
        x2 = int(np.clip(np.ceil(box[2]), x1 + 1, max(width, x1 + 1)))
        y2 = int(np.clip(np.ceil(box[3]), y1 + 1, max(height, y1 + 1)))
        x1, y1 = min(x1, width - 1), min(y1, height - 1)
        patch = img[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
        h, w = self.crop_size
        shrink = patch.shape[0] > h or patch.shape[1] > w
        view = cv2.resize(
            patch, (w, h),
            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return view.reshape(h, w, -1)

    def _color(self, view: np.ndarray) -> np.ndarray:
        c = self.color_jitter
        out = view.astype(np.float32) * np.random.uniform(1 - c, 1 + c) + \
            np.random.uniform(-c, c) * 255
        return np.clip(out, 0, 255).astype(view.dtype)

    def transform(self, results: dict) -> dict:
        img = results['img']
        boxes = results['gt_bboxes']
        boxes = np.asarray(getattr(boxes, 'tensor', boxes), np.float64)
        views = []
        for box in boxes.reshape(-1, 4):
            if self.scale_jitter or self.shift_jitter:
                box = self._jitter(box)
            view = self.crop(img, box)
            if self.color_jitter:
                view = self._color(view)
            views.append(view.transpose(2, 0, 1))
        h, w = self.crop_size
        channels = img.shape[2] if img.ndim == 3 else 1
        results['gt_crops'] = np.ascontiguousarray(
            np.stack(views) if views else np.zeros((0, channels, h, w),
                                                   img.dtype))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'scale_jitter={self.scale_jitter}, shift_jitter='
                f'{self.shift_jitter}, color_jitter={self.color_jitter})')

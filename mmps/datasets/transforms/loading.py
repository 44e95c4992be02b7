# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
from mmdet.datasets.transforms import LoadAnnotations

from mmps.registry import TRANSFORMS


#: Keys a geometric transform (``Resize``, ``RandomFlip``...) sets.
GEOMETRIC_KEYS = ('scale_factor', 'flip', 'homography_matrix')


@TRANSFORMS.register_module()
class LoadPersonSearchAnnotations(LoadAnnotations):
    """Load boxes and labels (as mmdet does) plus the per-box identities.

    Adds to the results, aligned with ``gt_bboxes``:

    - ``gt_instances_ids`` (np.int64): global box index (memory slot), -1 on
      test images;
    - ``gt_person_ids`` (np.int64): dataset identity, -1 when unlabeled.

    mmdet transforms that drop boxes (``RandomCrop``, ``FilterAnnotations``...)
    do not know these keys; :class:`PackPersonSearchInputs` then fails loudly
    instead of packing misaligned ids.

    One coordinate frame for every box (mmdet's rule): the annotations are
    loaded *before* the geometric transforms, which then carry the boxes,
    training, gallery and query boxes alike, into input pixels; consumers
    that report in original pixels divide by ``scale_factor``. A pipeline
    that resizes or flips first is refused with the fix.

    Args:
        with_ids (bool): Load the two id arrays. Defaults to True.
        **kwargs: Passed to :class:`mmdet.datasets.transforms.LoadAnnotations`
            (``with_bbox=True``, ``with_label=True`` by default).
    """

    def __init__(self, with_ids: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.with_ids = with_ids

    def transform(self, results: dict) -> dict:
        moved = [k for k in GEOMETRIC_KEYS if k in results]
        if moved:
            raise ValueError(
                f'{type(self).__name__}: the image was already transformed '
                f'({", ".join(moved)} set) when the annotations were loaded '
                f'({results.get("img_path", "?")}): put '
                'LoadPersonSearchAnnotations right after LoadImageFromFile, '
                'before Resize / RandomFlip, so that the boxes follow the '
                'image into input pixels')
        results = super().transform(results)
        if self.with_ids:
            instances = results.get('instances', [])
            results['gt_instances_ids'] = np.array(
                [i.get('instance_id', -1) for i in instances], np.int64)
            results['gt_person_ids'] = np.array(
                [i.get('person_id', -1) for i in instances], np.int64)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', with_ids={self.with_ids})'

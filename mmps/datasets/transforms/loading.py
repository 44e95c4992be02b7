# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
from mmdet.datasets.transforms import LoadAnnotations

from mmps.registry import TRANSFORMS


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

    Args:
        with_ids (bool): Load the two id arrays. Defaults to True.
        **kwargs: Passed to :class:`mmdet.datasets.transforms.LoadAnnotations`
            (``with_bbox=True``, ``with_label=True`` by default).
    """

    def __init__(self, with_ids: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.with_ids = with_ids

    def transform(self, results: dict) -> dict:
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

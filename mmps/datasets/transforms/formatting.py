# Copyright (c) OpenMMLab. All rights reserved.
from mmdet.datasets.transforms import PackDetInputs

from mmps.registry import TRANSFORMS

#: Per-box arrays of person search and their ``InstanceData`` field names.
PERSON_SEARCH_INSTANCE_KEYS = {
    'gt_instances_ids': 'instances_ids',
    'gt_person_ids': 'person_ids',
    'gt_crops': 'crops',  # InstanceViews: (N, 3, h, w) uint8
    'gt_occluded': 'occluded',  # BoxOcclusion: (N, ) bool
}


@TRANSFORMS.register_module()
class PackPersonSearchInputs(PackDetInputs):
    """Pack a person search sample: mmdet's fields plus per-box identities.

    ``gt_instances_ids`` / ``gt_person_ids`` (and, when the Siamese
    transforms ran, ``gt_crops`` / ``gt_occluded``) go into ``gt_instances``
    (as ``instances_ids`` / ``person_ids`` / ``crops`` / ``occluded``) beside
    ``bboxes`` and ``labels``, split by ``gt_ignore_flags`` the same way, so
    they stay aligned with the boxes and any length mismatch is an error.

    Args:
        meta_keys (tuple): Keys copied to the data sample's metainfo; by
            default mmdet's plus the query / gallery fields of the person
            search test split.
    """

    mapping_table = {**PackDetInputs.mapping_table,
                     **PERSON_SEARCH_INSTANCE_KEYS}

    def __init__(self,
                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                            'scale_factor', 'flip', 'flip_direction',
                            'img_name', 'cam_id', 'is_query', 'query_id',
                            'query_img_index', 'gallery_img_ids')):
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        if 'gt_bboxes' in results:
            num = len(results['gt_bboxes'])
            for key in PERSON_SEARCH_INSTANCE_KEYS:
                if key in results and len(results[key]) != num:
                    raise ValueError(
                        f'{results.get("img_path", "")}: {key} has '
                        f'{len(results[key])} entries but gt_bboxes has {num}:'
                        ' a transform dropped boxes without their ids (mmdet '
                        'transforms only filter their own keys)')
        return super().transform(results)

# Copyright (c) OpenMMLab. All rights reserved.
"""Person search datasets.

The dataset classes and transforms (mmengine / mmdet) load on first use:
``import mmps.datasets.native`` (the torch-free readers of the native files,
used by the offline evaluator) does not import them.
``mmps.utils.register_all_modules`` and the registry import
:mod:`mmps.datasets.registered`, which registers everything.
"""
from mmps.utils.lazy import lazy_getattr
from .native import CUHK_SYSU_GALLERY_SIZES, prw_camera_id
from .native_io import AnnotationError

#: public name -> the module defining it (imported on first access)
_LAZY = {
    'BasePersonSearchDataset': '.base_ps_dataset',
    'ImageReadError': '.base_ps_dataset',
    'CUHKSYSUDataset': '.cuhk_sysu',
    'PRWDataset': '.prw',
    'BoxOcclusion': '.transforms',
    'InstanceViews': '.transforms',
    'LoadPersonSearchAnnotations': '.transforms',
    'PackPersonSearchInputs': '.transforms',
}

__all__ = ['AnnotationError', 'CUHK_SYSU_GALLERY_SIZES', 'prw_camera_id'
           ] + list(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)

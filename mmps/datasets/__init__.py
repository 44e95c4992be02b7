# Copyright (c) OpenMMLab. All rights reserved.
"""Person search datasets.

The dataset classes and transforms (mmengine / mmdet) load on first use:
``import mmps.datasets.native`` (the torch-free readers of the native files,
used by the offline evaluator) does not import them.
``mmps.utils.register_all_modules`` and the registry import
:mod:`mmps.datasets.registered`, which registers everything.
"""
import importlib

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


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

# Copyright (c) OpenMMLab. All rights reserved.
from .base_ps_dataset import BasePersonSearchDataset, ImageReadError
from .cuhk_sysu import CUHK_SYSU_GALLERY_SIZES, CUHKSYSUDataset
from .native_io import AnnotationError
from .prw import PRWDataset, prw_camera_id
from .transforms import *  # noqa: F401,F403

__all__ = [
    'AnnotationError', 'BasePersonSearchDataset', 'CUHKSYSUDataset',
    'CUHK_SYSU_GALLERY_SIZES', 'ImageReadError', 'PRWDataset',
    'prw_camera_id'
]

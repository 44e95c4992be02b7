# Copyright (c) OpenMMLab. All rights reserved.
"""Imports every dataset class and transform, registering them (the
``locations`` of the mmps ``DATASETS`` and ``TRANSFORMS`` registries)."""
from .base_ps_dataset import BasePersonSearchDataset, ImageReadError
from .cuhk_sysu import CUHKSYSUDataset
from .prw import PRWDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'BasePersonSearchDataset', 'CUHKSYSUDataset', 'ImageReadError',
    'PRWDataset'
]

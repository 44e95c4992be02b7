# Copyright (c) OpenMMLab. All rights reserved.
"""Synthetic person-search datasets written in the native CUHK-SYSU and PRW
formats (the embedded default data and the test fixture)."""
from .generator import (REAL_SIZES, SyntheticTruth, make_synthetic_cuhk_sysu,
                        make_synthetic_prw)

__all__ = [
    'REAL_SIZES', 'SyntheticTruth', 'make_synthetic_cuhk_sysu',
    'make_synthetic_prw'
]

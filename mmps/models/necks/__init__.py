# Copyright (c) OpenMMLab. All rights reserved.
from .c4c5_fusion_neck import C4C5FusionNeck

__all__ = ['C4C5FusionNeck']

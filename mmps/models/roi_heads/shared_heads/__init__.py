# Copyright (c) OpenMMLab. All rights reserved.
from .deform_conv_shared_head import DeformConvSharedHead

__all__ = ['DeformConvSharedHead']

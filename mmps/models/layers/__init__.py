# Copyright (c) OpenMMLab. All rights reserved.
from .deform_conv import AnyBatchDeformConv2dPack, build_conv_or_dcn

__all__ = ['AnyBatchDeformConv2dPack', 'build_conv_or_dcn']

# Copyright (c) OpenMMLab. All rights reserved.
from .deform_conv import (DCN_REFERENCE_INIT, AnyBatchDeformConv2dPack,
                          build_conv_or_dcn)

__all__ = [
    'AnyBatchDeformConv2dPack', 'build_conv_or_dcn', 'DCN_REFERENCE_INIT'
]

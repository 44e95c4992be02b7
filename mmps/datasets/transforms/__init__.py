# Copyright (c) OpenMMLab. All rights reserved.
from .box_occlusion import BoxOcclusion
from .formatting import PackPersonSearchInputs
from .instance_views import InstanceViews
from .loading import LoadPersonSearchAnnotations

__all__ = [
    'BoxOcclusion', 'InstanceViews', 'LoadPersonSearchAnnotations',
    'PackPersonSearchInputs'
]

# Copyright (c) OpenMMLab. All rights reserved.
from .bbox_heads import *  # noqa: F401,F403
from .dicl_roi_head import DICLRoIHead
from .person_search_roi_head import PersonSearchRoIHead
from .reid_heads import *  # noqa: F401,F403
from .shared_heads import *  # noqa: F401,F403

__all__ = ['DICLRoIHead', 'PersonSearchRoIHead']

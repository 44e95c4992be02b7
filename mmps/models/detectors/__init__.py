# Copyright (c) OpenMMLab. All rights reserved.
from .dicl import DICL
from .person_search_detector import (CROP_BOXES, REID_MODES,
                                     PersonSearchDetector)

__all__ = ['DICL', 'PersonSearchDetector', 'CROP_BOXES', 'REID_MODES']

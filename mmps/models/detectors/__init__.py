# Copyright (c) OpenMMLab. All rights reserved.
from .dicl import DICL
from .person_search_detector import (QUERY_MODES, REID_MODES,
                                     PersonSearchDetector)

__all__ = ['DICL', 'PersonSearchDetector', 'QUERY_MODES', 'REID_MODES']

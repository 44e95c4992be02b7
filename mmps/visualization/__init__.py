# Copyright (c) OpenMMLab. All rights reserved.
from .search_visualizer import draw_search_result

__all__ = ['draw_search_result']

# Copyright (c) OpenMMLab. All rights reserved.
from .instance_memory_init_hook import InstanceMemoryInitHook
from .pseudo_label_hook import PseudoLabelHook
from .search_visualization_hook import SearchVisualizationHook

__all__ = [
    'InstanceMemoryInitHook', 'PseudoLabelHook', 'SearchVisualizationHook'
]

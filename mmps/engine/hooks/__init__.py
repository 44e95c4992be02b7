# Copyright (c) OpenMMLab. All rights reserved.
from .instance_memory_init_hook import InstanceMemoryInitHook
from .pseudo_label_hook import PseudoLabelHook
from .search_visualization_hook import SearchVisualizationHook
from .training_curve_hook import TrainingCurveHook

__all__ = [
    'InstanceMemoryInitHook', 'PseudoLabelHook', 'SearchVisualizationHook',
    'TrainingCurveHook'
]

# Copyright (c) OpenMMLab. All rights reserved.
from .instance_memory_init_hook import InstanceMemoryInitHook
from .pseudo_label_hook import PseudoLabelHook

__all__ = ['InstanceMemoryInitHook', 'PseudoLabelHook']

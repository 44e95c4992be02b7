# Copyright (c) OpenMMLab. All rights reserved.
from ._utils import (demo_person_search_inputs, get_config,
                     get_config_directory, get_detector_cfg, get_roi_head_cfg,
                     prepare_instance_memory, shrink_person_search_cfg,
                     use_roi_align_without_cuda)

__all__ = [
    'demo_person_search_inputs', 'get_config', 'get_config_directory',
    'get_detector_cfg', 'get_roi_head_cfg', 'prepare_instance_memory',
    'shrink_person_search_cfg', 'use_roi_align_without_cuda'
]

# Copyright (c) OpenMMLab. All rights reserved.
from .benchmark import report_figures
from .dist import destroy_distributed, init_cpu_distributed
from .misc import to_numpy
from .setup_env import register_all_modules

__all__ = ['register_all_modules', 'report_figures', 'init_cpu_distributed',
           'destroy_distributed', 'to_numpy']

# Copyright (c) OpenMMLab. All rights reserved.
from .benchmark import report_figures
from .dist import init_cpu_distributed
from .setup_env import register_all_modules

__all__ = ['register_all_modules', 'report_figures', 'init_cpu_distributed']

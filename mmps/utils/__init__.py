# Copyright (c) OpenMMLab. All rights reserved.
"""Utilities. :func:`report_figures` is plain Python; the others (torch,
mmengine) load on first access, so that light tools can print figures."""
from .benchmark import report_figures
from .lazy import lazy_getattr

#: public name -> the module defining it (imported on first access)
_LAZY = {
    'destroy_distributed': '.dist',
    'init_cpu_distributed': '.dist',
    'to_numpy': '.misc',
    'register_all_modules': '.setup_env',
}

__all__ = ['register_all_modules', 'report_figures', 'init_cpu_distributed',
           'destroy_distributed', 'to_numpy']


__getattr__ = lazy_getattr(__name__, _LAZY)

# Copyright (c) OpenMMLab. All rights reserved.
"""Utilities. :func:`report_figures` is plain Python; the others (torch,
mmengine) load on first access, so that light tools can print figures."""
import importlib

from .benchmark import report_figures

#: public name -> the module defining it (imported on first access)
_LAZY = {
    'destroy_distributed': '.dist',
    'init_cpu_distributed': '.dist',
    'to_numpy': '.misc',
    'register_all_modules': '.setup_env',
}

__all__ = ['register_all_modules', 'report_figures', 'init_cpu_distributed',
           'destroy_distributed', 'to_numpy']


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

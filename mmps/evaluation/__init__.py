# Copyright (c) OpenMMLab. All rights reserved.
"""Person search evaluation.

:mod:`.functional` is numpy only; the mmengine metric
(:class:`PersonSearchMetric`, in :mod:`.metrics`) loads on first use, and
``register_all_modules`` / the ``METRICS`` registry import it explicitly.
"""
import importlib

from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional

__all__ = list(_functional) + ['PersonSearchMetric']


def __getattr__(name: str):
    """The names of :mod:`.metrics` (``PersonSearchMetric``...), imported on
    first access."""
    if not name.startswith('__'):
        metrics = importlib.import_module('.metrics', __name__)
        if name in getattr(metrics, '__all__', ()):
            value = globals()[name] = getattr(metrics, name)
            return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

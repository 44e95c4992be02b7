# Copyright (c) OpenMMLab. All rights reserved.
"""mmps: an OpenMMLab person search toolbox.

The versions of mmcv, mmengine and mmdet are checked from the installed
distributions' metadata, without importing them: ``mmps.evaluation.functional``
and ``mmps.datasets.native`` stay importable with numpy and scipy alone.
"""
from importlib import metadata

from packaging.version import Version

from .version import __version__

mmcv_minimum_version = '2.0.0rc4'
mmcv_maximum_version = '2.2.0'
mmengine_minimum_version = '0.10.0'
mmengine_maximum_version = '1.0.0'
mmdet_minimum_version = '3.3.0'
mmdet_maximum_version = '3.4.0'


def _check(name: str, low: str, high: str) -> None:
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return  # not installed: the import that needs it says so
    if not Version(low) <= Version(version) < Version(high):
        raise ImportError(
            f'{name}=={version} is used but incompatible with mmps. '
            f'Please install {name}>={low}, <{high} (tools/install.sh does).')


_check('mmcv', mmcv_minimum_version, mmcv_maximum_version)
_check('mmengine', mmengine_minimum_version, mmengine_maximum_version)
_check('mmdet', mmdet_minimum_version, mmdet_maximum_version)

__all__ = ['__version__']

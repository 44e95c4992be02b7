# Copyright (c) OpenMMLab. All rights reserved.
"""mmps: an OpenMMLab person search toolbox."""
import mmcv
import mmdet
import mmengine
from mmengine.utils import digit_version

from .version import __version__

mmcv_minimum_version = '2.0.0rc4'
mmcv_maximum_version = '2.2.0'
mmengine_minimum_version = '0.10.0'
mmengine_maximum_version = '1.0.0'
mmdet_minimum_version = '3.3.0'
mmdet_maximum_version = '3.4.0'


def _check(name: str, version: str, low: str, high: str) -> None:
    v = digit_version(version)
    if not digit_version(low) <= v < digit_version(high):
        raise ImportError(
            f'{name}=={version} is used but incompatible with mmps. '
            f'Please install {name}>={low}, <{high} (tools/install.sh does).')


_check('mmcv', mmcv.__version__, mmcv_minimum_version, mmcv_maximum_version)
_check('mmengine', mmengine.__version__, mmengine_minimum_version,
       mmengine_maximum_version)
_check('mmdet', mmdet.__version__, mmdet_minimum_version,
       mmdet_maximum_version)

__all__ = ['__version__']

# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint import load_local_checkpoint

__all__ = ['load_local_checkpoint']

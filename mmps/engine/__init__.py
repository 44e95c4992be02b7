# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint import (load_local_checkpoint, local_checkpoints_trusted,
                         register_checkpoint_loader, trust_local_checkpoints,
                         trusted_local_checkpoints)
from .hooks import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403

__all__ = [
    'load_local_checkpoint', 'register_checkpoint_loader',
    'trust_local_checkpoints',
    'local_checkpoints_trusted', 'trusted_local_checkpoints'
]

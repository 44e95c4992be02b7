# Copyright (c) OpenMMLab. All rights reserved.
from .loops import (ResumableEpochBasedTrainLoop, get_random_state,
                    resumed_in_mid_epoch, set_random_state)

__all__ = [
    'ResumableEpochBasedTrainLoop', 'get_random_state', 'set_random_state',
    'resumed_in_mid_epoch'
]

# Copyright (c) OpenMMLab. All rights reserved.
import functools
from typing import Callable

import torch
from torch import Tensor


def float32_forward(forward: Callable) -> Callable:
    """Run a loss's ``forward`` with autocast off.

    Under AMP (fp16 / bf16 autocast) the matrix products of the re-id losses
    would run in half precision: ``|x|^2 + |y|^2 - 2 x.y`` cancels, and
    similarities divided by a small temperature lose most of their digits.
    The losses promote half inputs to float32 themselves; with autocast off
    their products stay in float32 (as the reference's
    ``custom_fwd(cast_inputs=torch.float32)``), and the gradient still flows
    back to the half inputs.
    """

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        device = next(
            (a.device.type
             for a in (*args, *kwargs.values()) if isinstance(a, Tensor)),
            'cpu')
        with torch.autocast(device_type=device, enabled=False):
            return forward(self, *args, **kwargs)

    return wrapper

# Copyright (c) OpenMMLab. All rights reserved.
from typing import Any, Optional

import numpy as np
import torch


def to_numpy(x: Any, dtype: Optional[np.dtype] = None) -> np.ndarray:
    """A tensor, mmdet boxes or an array-like as a numpy array.

    Tensors are detached and moved to the CPU; half / bfloat16 tensors are
    read as float32 first (numpy has no bfloat16); mmdet ``BaseBoxes`` give
    their ``tensor``.

    Args:
        x (Any): A ``torch.Tensor``, an mmdet ``BaseBoxes``, or anything
            ``np.asarray`` takes.
        dtype (np.dtype, optional): The result's dtype. Defaults to None
            (kept).

    Returns:
        np.ndarray: The array.
    """
    if hasattr(x, 'tensor') and isinstance(x.tensor, torch.Tensor):
        x = x.tensor  # mmdet BaseBoxes
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.is_floating_point() and x.dtype not in (torch.float32,
                                                     torch.float64):
            x = x.float()
        x = x.cpu().numpy()
    return np.asarray(x, dtype=dtype)

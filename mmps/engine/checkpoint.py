# Copyright (c) OpenMMLab. All rights reserved.
"""Local checkpoint loading that works with torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default; mmengine 0.10.7
calls ``torch.load`` without the argument, and its training checkpoints hold
more than tensors (the message hub's ``HistoryBuffer`` of numpy arrays, whose
unpickling needs ``getattr``), so ``--resume`` and ``tools/test.py CKPT`` fail.

mmps registers a local loader that tries the safe ``weights_only=True`` load
first (enough for plain state dicts such as pretrained backbones) and falls
back to a full unpickling, with a warning, for checkpoints that need it: the
behaviour mmengine was written for (torch < 2.6). Only load files you trust.
"""
import logging
import os.path as osp
import pickle

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """Load a local checkpoint, safely when it holds only weights.

    Args:
        filename (str): Checkpoint path (``~`` expanded).
        map_location: Same as :func:`torch.load`.

    Returns:
        dict: The checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError:
        print_log(
            f'{filename} holds Python objects besides tensors (mmengine '
            'training state): loading it with weights_only=False. Only load '
            'checkpoints you trust.',
            logger='current',
            level=logging.INFO)
        return torch.load(filename, map_location=map_location,
                          weights_only=False)


CheckpointLoader.register_scheme(
    prefixes='', loader=load_local_checkpoint, force=True)

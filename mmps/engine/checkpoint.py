# Copyright (c) OpenMMLab. All rights reserved.
"""Local checkpoint loading that works with torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default; mmengine 0.10.7
calls ``torch.load`` without the argument, and its training checkpoints hold
more than tensors (the message hub's ``HistoryBuffer`` of numpy arrays, the
random state of a resumable run), so that ``--resume`` and
``tools/test.py CKPT`` fail.

:func:`register_checkpoint_loader` installs, as mmengine's loader of local
paths, :func:`load_local_checkpoint`: it always tries the safe
``weights_only=True`` load first (enough for plain state dicts such as
pretrained backbones). A file that needs full unpickling is loaded only where
local checkpoints are trusted: mmps's tools (``tools/train.py``,
``tools/test.py``...) opt in with :func:`trust_local_checkpoints`, because
their user names the file; elsewhere (library use) the default is safe and
such a file raises an error that says how to opt in
(``trust_local_checkpoints()`` or ``MMPS_TRUST_CHECKPOINTS=1``). Unpickling
runs code from the file: only trust files you made or know.

Importing mmps changes nothing in mmengine: the loader is installed by an
explicit call, :func:`register_checkpoint_loader`, which mmps's tools make
(through :func:`trust_local_checkpoints`) and :class:`mmps.apis.PersonSearcher`
makes before it loads a checkpoint.
"""
import contextlib
import logging
import os
import os.path as osp
import pickle

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

_TRUSTED = False


def register_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader of local paths.

    Replaces, for this process, the loader that
    ``mmengine.runner.CheckpointLoader`` uses for paths without a scheme
    (``load_from``, ``--resume``, ``init_cfg=dict(type='Pretrained')``).
    Idempotent. Remote schemes (``http://``, ``open-mmlab://``...) keep
    mmengine's loaders.
    """
    if CheckpointLoader._schemes.get('') is not load_local_checkpoint:
        CheckpointLoader.register_scheme(
            prefixes='', loader=load_local_checkpoint, force=True)


def trust_local_checkpoints(trust: bool = True) -> None:
    """Allow (or forbid again) the full unpickling of local checkpoints.

    Also installs mmps's local loader (:func:`register_checkpoint_loader`),
    without which the setting has no effect: the call mmps's tools make
    first.

    Args:
        trust (bool): True lets :func:`load_local_checkpoint` fall back to
            ``weights_only=False`` for files that hold more than tensors.
    """
    global _TRUSTED
    register_checkpoint_loader()
    _TRUSTED = bool(trust)


@contextlib.contextmanager
def trusted_local_checkpoints(trust: bool = True):
    """Trust (or not) local checkpoints inside a ``with`` block only.

    The previous setting is restored on exit, also after an error.

    Installs mmps's local loader first (:func:`register_checkpoint_loader`).

    Args:
        trust (bool): The setting inside the block. Defaults to True.
    """
    global _TRUSTED
    register_checkpoint_loader()
    previous = _TRUSTED
    _TRUSTED = bool(trust)
    try:
        yield
    finally:
        _TRUSTED = previous


def local_checkpoints_trusted() -> bool:
    """Whether full unpickling is allowed (call or ``MMPS_TRUST_CHECKPOINTS``)."""
    env = os.environ.get('MMPS_TRUST_CHECKPOINTS', '').strip().lower()
    return _TRUSTED or env in ('1', 'true', 'yes')


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """Load a local checkpoint, safely when it holds only weights.

    Args:
        filename (str): Checkpoint path (``~`` expanded).
        map_location: Same as :func:`torch.load`.

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: No such file.
        RuntimeError: The file holds Python objects besides tensors and
            local checkpoints are not trusted, or it is not a checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as e:
        if not local_checkpoints_trusted():
            raise RuntimeError(
                f'{filename} holds Python objects besides tensors (an '
                'mmengine training checkpoint?) and torch >= 2.6 loads '
                'weights only. If you trust the file, call '
                'mmps.engine.trust_local_checkpoints() or set '
                'MMPS_TRUST_CHECKPOINTS=1 (mmps tools do this). Safe-load '
                f'error: {str(e).splitlines()[0]}') from e
        print_log(
            f'{filename} holds Python objects besides tensors (mmengine '
            'training state): loading it with weights_only=False (trusted '
            'local checkpoint).',
            logger='current',
            level=logging.INFO)
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as e:
        raise RuntimeError(f'{filename} is not a readable checkpoint: '
                           f'{e}') from e


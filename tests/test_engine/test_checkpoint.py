# Copyright (c) OpenMMLab. All rights reserved.
"""mmengine checkpoints load under torch >= 2.6 (weights_only default)."""
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

from mmps.engine import trust_local_checkpoints


def _training_checkpoint(tmp_path):
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(
        dict(
            state_dict={'w': torch.ones(2)},
            message_hub=dict(log_scalars={'train/loss': buf}),
            meta=dict(epoch=1)), path)
    return path


def test_training_checkpoint_needs_trust(tmp_path, monkeypatch):
    """Library default: safe; the error says how to opt in."""
    monkeypatch.delenv('MMPS_TRUST_CHECKPOINTS', raising=False)
    path = _training_checkpoint(tmp_path)
    with pytest.raises(RuntimeError, match='trust_local_checkpoints') as e:
        _load_checkpoint(path, map_location='cpu')
    assert path in str(e.value)
    # the environment variable opts in too
    monkeypatch.setenv('MMPS_TRUST_CHECKPOINTS', '1')
    assert _load_checkpoint(path, map_location='cpu')['meta']['epoch'] == 1


def test_not_a_checkpoint_is_reported(tmp_path):
    path = tmp_path / 'broken.pth'
    path.write_bytes(b'not a checkpoint at all')
    trust_local_checkpoints(True)
    try:
        with pytest.raises(RuntimeError, match='broken.pth'):
            _load_checkpoint(str(path), map_location='cpu')
    finally:
        trust_local_checkpoints(False)


def test_training_checkpoint_with_message_hub_loads(tmp_path):
    path = _training_checkpoint(tmp_path)
    trust_local_checkpoints(True)  # what mmps tools do
    try:
        ckpt = _load_checkpoint(path, map_location='cpu')
    finally:
        trust_local_checkpoints(False)
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 0.5


def test_plain_weights_load_without_unpickling_objects(tmp_path):
    path = str(tmp_path / 'weights.pth')
    torch.save({'w': torch.arange(3)}, path)
    with mock.patch('torch.load', wraps=torch.load) as load:
        ckpt = _load_checkpoint(path, map_location='cpu')
    assert torch.equal(ckpt['w'], torch.arange(3))
    assert load.call_count == 1
    assert load.call_args.kwargs['weights_only'] is True

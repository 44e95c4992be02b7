# Copyright (c) OpenMMLab. All rights reserved.
"""mmengine checkpoints load under torch >= 2.6 (weights_only default)."""
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

from mmps.engine import (load_local_checkpoint, register_checkpoint_loader,
                         trust_local_checkpoints)


@pytest.fixture(autouse=True)
def _mmps_loader():
    register_checkpoint_loader()  # the explicit call of mmps's tools


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


def test_importing_mmps_leaves_mmengine_loader_alone():
    """The loader is installed by an explicit call, not by an import."""
    code = (
        'from mmengine.runner.checkpoint import CheckpointLoader as C\n'
        'before = C._schemes[""]\n'
        'import mmps, mmps.engine, mmps.apis\n'
        'from mmps.utils import register_all_modules\n'
        'register_all_modules()\n'
        'assert C._schemes[""] is before, "an import replaced the loader"\n'
        'from mmps.engine import register_checkpoint_loader, '
        'load_local_checkpoint\n'
        'register_checkpoint_loader(); register_checkpoint_loader()\n'
        'assert C._schemes[""] is load_local_checkpoint\n'
        'assert list(C._schemes).count("") == 1\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]


def test_trusting_installs_the_loader(monkeypatch):
    from mmengine.runner.checkpoint import CheckpointLoader
    monkeypatch.setitem(CheckpointLoader._schemes, '', object())
    trust_local_checkpoints(False)
    assert CheckpointLoader._schemes[''] is load_local_checkpoint

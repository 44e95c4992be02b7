# Copyright (c) OpenMMLab. All rights reserved.
"""mmengine checkpoints load under torch >= 2.6 (weights_only default)."""
from unittest import mock

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import mmps.engine  # noqa: F401  registers the loader


def test_training_checkpoint_with_message_hub_loads(tmp_path):
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(
        dict(
            state_dict={'w': torch.ones(2)},
            message_hub=dict(log_scalars={'train/loss': buf}),
            meta=dict(epoch=1)), path)
    ckpt = _load_checkpoint(path, map_location='cpu')
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

# Copyright (c) OpenMMLab. All rights reserved.
"""The reference configs at reference scale on a synthetic PRW-format set."""
import copy

import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmps.registry import DATASETS, MODELS
from mmps.testing import get_config, prepare_instance_memory

# every module of this folder: marked `cuda`, skipped without a CUDA device
CUDA_ONLY = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason='needs a CUDA device (mmcv has no CPU kernel for the '
        "reference's DeformRoIPoolPack)")
]

# the reference frames of PRW and CUHK-SYSU's largest are ~1920x1080
FRAME_SIZE = (1080, 1920)  # (H, W)


def reference_cfg(fname: str = 'dicl_prw.py'):
    """A reference config without the ImageNet checkpoint (none is
    downloaded): the real ResNet-50 from its random init."""
    cfg = get_config(fname)
    cfg.model.backbone.init_cfg = None
    return cfg


def build_reference_model(cfg, num_slots: int, seed: int = 0):
    """The reference detector on CUDA, its memory sized and filled."""
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    prepare_instance_memory(model, num_slots, seed=seed)
    return model.cuda()


def build_split(cfg, data_root: str, split: str):
    """The dataset of a split with the config's pipeline of that split."""
    loader = cfg.train_dataloader if split == 'train' else cfg.test_dataloader
    ds_cfg = copy.deepcopy(loader.dataset)
    ds_cfg.data_root = data_root
    return DATASETS.build(ds_cfg)


def collate(dataset, indices):
    return pseudo_collate([dataset[i] for i in indices])

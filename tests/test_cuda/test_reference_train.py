# Copyright (c) OpenMMLab. All rights reserved.
"""One training iteration of the reference config at reference scale.

``configs/dicl_prw.py`` as it is (DeformRoIPoolPack, neck and head DCNs, the
real ResNet-50 from its random init: no weights are downloaded), batch 2 of
1920x1080 PRW-format frames through the reference training pipeline
(multi-scale resize up to 2000x1200, flip, instance views, occlusion), in
fp32 and with mixed precision as ``tools/train.py --amp`` sets it.
"""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from .utils import (CUDA_ONLY, build_reference_model, build_split, collate,
                    reference_cfg)

pytestmark = CUDA_ONLY

LOSSES = ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
          'loss_id', 'loss_triplet', 'loss_sim', 'loss_kl')


@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
def test_one_reference_training_iteration(reference_prw_root, amp):
    cfg = reference_cfg()
    if amp:  # as tools/train.py --amp
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    dataset = build_split(cfg, reference_prw_root, 'train')
    torch.manual_seed(0)
    data = collate(dataset, [0, 1])
    assert all('crops' in s.gt_instances for s in data['data_samples'])
    model = build_reference_model(cfg, dataset.num_instances).train()
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(
        cfg.optim_wrapper))
    memory = model.roi_head.memory
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if p.requires_grad}
    memory_before = memory.features.clone()

    log_vars = model.train_step(data, optim_wrapper)

    for key in LOSSES:
        assert key in log_vars, f'{key} not in {sorted(log_vars)}'
        assert torch.isfinite(torch.as_tensor(log_vars[key])), key
    assert torch.isfinite(torch.as_tensor(log_vars['loss']))
    changed = [n for n, p in model.named_parameters()
               if n in before and not torch.equal(p.detach(), before[n])]
    # SGD moved the backbone, the neck DCN, the RoI pool's offsets, the head
    # DCN and the re-id embedding
    for part in ('backbone.', 'neck.', 'bbox_roi_extractor.',
                 'shared_head.', 'reid_head.'):
        assert any(part in n for n in changed), f'nothing of {part} moved'
    for n, p in model.named_parameters():
        assert torch.isfinite(p).all(), n
    # the memory took the batch's instances (momentum update)
    assert not torch.equal(memory.features, memory_before)
    torch.testing.assert_close(
        memory.features.norm(dim=1),
        torch.ones(memory.num_slots, device='cuda'))

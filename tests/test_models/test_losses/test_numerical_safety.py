# Copyright (c) OpenMMLab. All rights reserved.
"""No NaN / Inf from DICL's losses, memory and clustering on degenerate
batches (empty, one cluster, identical rows, extreme norms), under CPU
autocast (bf16, fp16) and with half inputs; gradient clipping as configured.
"""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from mmps.models.losses import (BatchHardTripletWithBackgroundLoss,
                                ClusterMemoryContrastLoss,
                                DenseSimilarityKLLoss, ManyToOneLoss)
from mmps.models.reid import InstanceMemory
from mmps.models.clustering import generate_pseudo_labels
from mmps.registry import MODELS
from mmps.testing import (demo_person_search_inputs, get_config,
                          get_detector_cfg, get_roi_head_cfg,
                          shrink_person_search_cfg)

D = 8
HALF = [torch.bfloat16, torch.float16]


def _memory(num=12, clusters=4):
    feats = F.normalize(torch.randn(num, D), dim=1)
    return feats, torch.arange(num) % clusters


def _labels(*values):
    return torch.tensor(values, dtype=torch.long).reshape(-1)


# Each case: (name, make) with make(feats) -> loss, where feats is (B, D).
def _cmc(targets, memory=None):
    mem, labels = memory if memory is not None else _memory()
    return lambda f: ClusterMemoryContrastLoss()(f, targets, mem, labels)


def _triplet(labels):
    return lambda f: BatchHardTripletWithBackgroundLoss()(f, labels)


def _pairwise(loss):
    # p = feats, g = a fixed rotation of feats (both receive the gradient)
    return lambda f: loss(f, f.flip(0) * 0.5 + f * 0.5)


LOSSES = {
    'cmc':
    _cmc(_labels(0, 1, 2, 3, 0, 1)),
    'cmc_single_cluster':
    _cmc(torch.zeros(6, dtype=torch.long),
         (F.normalize(torch.randn(12, D), dim=1), torch.zeros(12).long())),
    'cmc_identical_memory':
    _cmc(_labels(0, 1, 2, 3, 0, 1),
         (torch.ones(12, D) / D**0.5, torch.arange(12) % 4)),
    'cmc_zero_memory':
    _cmc(_labels(0, 1, 2, 3, 0, 1),
         (torch.zeros(12, D), torch.arange(12) % 4)),
    'many_to_one':
    _pairwise(ManyToOneLoss()),
    'dense_kl':
    _pairwise(DenseSimilarityKLLoss()),
    'triplet':
    _triplet(_labels(0, 0, 1, 1, -1, -1)),
    'triplet_single_cluster':
    _triplet(_labels(0, 0, 0, 0, -1, -1)),
    'triplet_all_background':
    _triplet(-torch.ones(6, dtype=torch.long)),
    'triplet_no_background':
    _triplet(_labels(0, 0, 1, 1, 2, 2)),
}


def _check(loss_fn, feats):
    feats = feats.detach().requires_grad_()
    loss = loss_fn(feats)
    assert loss.dim() == 0 and torch.isfinite(loss), float(loss)
    loss.backward()
    assert feats.grad is not None, 'the loss is not connected to feats'
    assert torch.isfinite(feats.grad).all()
    return loss.detach()


@pytest.mark.parametrize('name', sorted(LOSSES))
@pytest.mark.parametrize('kind',
                         ['random', 'identical', 'zero', 'tiny', 'large'])
def test_losses_finite(name, kind):
    feats = {
        'random': torch.randn(6, D),
        'identical': torch.ones(6, D),
        'zero': torch.zeros(6, D),
        'tiny': torch.randn(6, D) * 1e-20,
        # norms ~3e4, the fp16 range (DICL's embeddings are unit vectors;
        # the dense KL, quadratic in the norm, overflows its gradient in
        # fp32 from norms ~1e14, the others from ~1e19)
        'large': torch.randn(6, D) * 1e4,
    }[kind]
    _check(LOSSES[name], feats)


EMPTY = {
    'cmc': lambda f: ClusterMemoryContrastLoss()(f, _labels(), *_memory()),
    'many_to_one': lambda f: ManyToOneLoss()(f, f * 2),
    'dense_kl': lambda f: DenseSimilarityKLLoss()(f, f * 2),
    'triplet': lambda f: BatchHardTripletWithBackgroundLoss()(f, _labels()),
}


@pytest.mark.parametrize('name', sorted(EMPTY))
def test_empty_batch_gives_connected_zero(name):
    """No positive RoI: 0, finite, and backward still runs."""
    loss = _check(EMPTY[name], torch.randn(0, D))
    assert float(loss) == 0


@pytest.mark.parametrize('name,expected', [('cmc', None),
                                           ('many_to_one', None),
                                           ('dense_kl', 0.), ('triplet', 0.)])
def test_single_roi_batch(name, expected):
    single = {
        'cmc': lambda f: ClusterMemoryContrastLoss()
        (f, _labels(2), *_memory()),
        'many_to_one': lambda f: ManyToOneLoss()(f, f.flip(1)),
        'dense_kl': lambda f: DenseSimilarityKLLoss()(f, f.flip(1)),
        'triplet': lambda f: BatchHardTripletWithBackgroundLoss()
        (f, _labels(0)),
    }
    loss = _check(single[name], torch.randn(1, D))
    if expected is not None:
        assert float(loss) == expected


@pytest.mark.parametrize('dtype', HALF)
@pytest.mark.parametrize('name', sorted(LOSSES))
def test_losses_under_cpu_autocast(name, dtype):
    """Autocast as AMP does it: the features come out of a layer in half."""
    layer = nn.Linear(D, D)
    x = torch.randn(6, D)
    with torch.autocast('cpu', dtype=dtype):
        feats = layer(x)
        assert feats.dtype == dtype
        loss = LOSSES[name](feats)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # computed in float32 as without autocast (no half matrix products)
    torch.testing.assert_close(loss, LOSSES[name](feats), rtol=0, atol=0)
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()


@pytest.mark.parametrize('dtype', HALF)
@pytest.mark.parametrize('name', sorted(LOSSES))
def test_losses_with_half_inputs(name, dtype):
    feats = torch.randn(6, D).to(dtype).requires_grad_()
    loss = LOSSES[name](feats)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert feats.grad.dtype == dtype and torch.isfinite(feats.grad).all()


def test_cmc_with_empty_target_cluster():
    mem, labels = _memory()
    # labels 0, 2, 4, 6: cluster 5 has no slot, e_t = 0, -log(eps) finite
    loss = _check(
        lambda f: ClusterMemoryContrastLoss()
        (f, _labels(5, 5), mem, labels * 2), torch.randn(2, D))
    assert float(loss) == pytest.approx(-np.log(1e-6), rel=1e-5)


@pytest.mark.parametrize('dtype', HALF)
@pytest.mark.parametrize('num_items', [(2, 3), (0, 0)])
def test_dicl_roi_head_losses_under_cpu_autocast(dtype, num_items):
    """The whole DICL RoI head loss under AMP-like autocast (the synthetic
    config: no deformable conv, which has no CPU half kernel in mmcv)."""
    cfg = get_roi_head_cfg(
        shrink_person_search_cfg(get_detector_cfg('dicl_synthetic_prw.py')))
    head = MODELS.build(cfg).train()
    head.memory.resize_(16)
    head.memory.init_features(torch.arange(16),
                              torch.randn(16, head.embed_dim))
    head.memory.set_labels(torch.arange(16) // 2)
    c, h, w = head.bbox_roi_extractor.out_channels, 96, 128
    x = (torch.randn(2, c, h // 16, w // 16), )
    samples = demo_person_search_inputs(2, (3, h, w),
                                        num_items=list(num_items),
                                        seed=0)['data_samples']
    proposals = [
        InstanceData(bboxes=torch.cat([b, b + 1, b - 1]))
        for b in (s.gt_instances.bboxes for s in samples)
    ]
    gt_embeds = F.normalize(torch.randn(sum(num_items), head.embed_dim))
    with torch.autocast('cpu', dtype=dtype):
        losses = head.loss(x, proposals, samples, gt_embeds=gt_embeds)
    losses = {k: v for k, v in losses.items() if k.startswith('loss')}
    assert {'loss_id', 'loss_triplet', 'loss_sim', 'loss_kl'} <= set(losses)
    for key, value in losses.items():
        assert torch.isfinite(value), key
    sum(losses.values()).backward()
    for name, param in head.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name
    assert torch.isfinite(head.memory.features).all()


# -- memory -------------------------------------------------------------------
@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_memory_skips_non_finite_features(bad):
    memory = InstanceMemory(4, D)
    memory.init_features(torch.arange(4), torch.randn(4, D))
    before = memory.features.clone()
    feats = F.normalize(torch.randn(3, D), dim=1)
    feats[1, 2] = bad  # e.g. an fp16 overflow under AMP
    memory.update(feats, torch.tensor([0, 1, 2]), gather=False)
    assert torch.isfinite(memory.features).all()
    assert torch.equal(memory.features[1], before[1])  # kept as it was
    assert not torch.equal(memory.features[0], before[0])  # others updated
    assert memory.num_skipped_nonfinite == 1
    memory.init_features(torch.tensor([3, 2]), feats[[1, 0]] * 3)
    assert torch.isfinite(memory.features).all()
    assert torch.equal(memory.features[3], before[3])  # the bad row: skipped
    assert memory.num_skipped_nonfinite == 2


def test_memory_degenerate_updates_stay_finite():
    memory = InstanceMemory(3, D, momentum=0.2)
    memory.update(torch.zeros(0, D), torch.zeros(0).long(), gather=False)
    memory.init_features(torch.arange(3), torch.zeros(3, D))  # zero rows
    assert torch.equal(memory.features, torch.zeros(3, D))
    # a feature that cancels its slot gives a zero row, not NaN
    memory.init_features(torch.tensor([0]), torch.ones(1, D))
    memory.update(-memory.features[[0]] * 0.25,
                  torch.tensor([0]),
                  gather=False)
    assert torch.equal(memory.features[0], torch.zeros(D))
    for dtype in HALF:
        memory.update(torch.randn(4, D, dtype=dtype),
                      _labels(1, 1, 2, 2),
                      gather=False)
    assert torch.isfinite(memory.features).all()
    assert memory.num_skipped_nonfinite == 0


# -- clustering ---------------------------------------------------------------
@pytest.mark.parametrize('kind', ['identical', 'zero', 'tiny', 'large'])
def test_pseudo_labels_degenerate_features(kind):
    rng = np.random.default_rng(0)
    feats = {
        'identical': np.ones((20, D), np.float32),
        'zero': np.zeros((20, D), np.float32),
        'tiny': (rng.normal(size=(20, D)) * 1e-30).astype(np.float32),
        'large': (rng.normal(size=(20, D)) * 1e30).astype(np.float32),
    }[kind]
    out = generate_pseudo_labels(torch.from_numpy(feats),
                                 np.arange(20),
                                 k1=5,
                                 k2=2)
    assert out['labels'].shape == (20, ) and out['labels'].min() == 0
    if kind in ('identical', 'zero'):  # a single cluster
        assert out['num_clusters'] == 1 and out['indep_threshold'] == 0


@pytest.mark.parametrize('num', [0, 1, 2])
def test_pseudo_labels_tiny_memories(num):
    out = generate_pseudo_labels(np.ones((num, D)), np.arange(num))
    labels = out['labels']
    assert labels.shape == (num, ) and labels.dtype == np.int64
    # fewer boxes than min_samples: DBSCAN outliers, each its own cluster
    assert labels.tolist() == list(range(num))
    assert out['num_clusters'] == num


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_pseudo_labels_reject_non_finite_features(bad):
    feats = np.random.default_rng(0).normal(size=(10, D))
    feats[[3, 7], 1] = bad
    with pytest.raises(ValueError,
                       match=r'2 row\(s\) with NaN or Inf .*'
                       r'rows \[3, 7\]'):
        generate_pseudo_labels(feats, np.arange(10))
    with pytest.raises(ValueError, match='NaN or Inf'):
        generate_pseudo_labels(torch.from_numpy(feats), np.arange(10))


# -- gradient clipping --------------------------------------------------------
@pytest.mark.parametrize('config', ['dicl_synthetic_prw.py', 'dicl_prw.py'])
def test_gradient_clipping_as_configured(config):
    cfg = get_config(config).optim_wrapper
    assert cfg.clip_grad == dict(max_norm=10, norm_type=2)
    model = nn.Linear(D, 4)
    wrapper = build_optim_wrapper(model, cfg)
    before = model.weight.detach().clone()
    loss = (model(torch.ones(2, D)) * 1e6).sum()  # gradient norm ~ 1e7
    wrapper.backward(loss)
    wrapper.step()  # clips, then steps (update_params would zero the grads)
    norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert float(norm) == pytest.approx(10, rel=1e-4)
    lr = cfg.optimizer.lr
    step = (model.weight.detach() - before).norm()
    assert float(step) <= lr * 10 * (1 + 1e-4)  # one SGD step of the clip

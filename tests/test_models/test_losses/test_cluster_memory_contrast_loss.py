# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmps.models.losses import ClusterMemoryContrastLoss
from mmps.models.reid import InstanceMemory
from mmps.registry import MODELS

TAU = 0.05
EPS = 1e-6


def _loss_closed_form(e_t, kept):
    """-log(e_t / (e_t + sum(kept) + eps) + eps), in double precision."""
    return -math.log(e_t / (e_t + sum(kept) + EPS) + EPS)


def _unit(a):
    """A 2-d unit vector whose dot product with (1, 0) is ``a``."""
    return [a, math.sqrt(1 - a * a)]


def _reference_loss(feats, slot_ids, memory, labels, temp=TAU, top=0.6):
    """Transcription of the reference ``HybridMemoryMultiFocalPercent``
    forward (per-slot similarities averaged per cluster, masked softmax with
    the percent cut), CPU instead of CUDA. One deliberate difference: the
    reference compares the un-normalised exps with ``sorted[cut] * sum``,
    which float rounding can make larger than the cut element itself (it then
    drops it); here the comparison is made on the normalised values, so the
    cut element is always kept, as the method intends."""
    inputs = F.normalize(feats, p=2, dim=1)
    inputs = inputs.mm(memory.t()) / temp  # B x N
    num = inputs.size(0)
    targets = labels[slot_ids].clone()
    sim = torch.zeros(labels.max() + 1, num, dtype=inputs.dtype)
    sim.index_add_(0, labels, inputs.t().contiguous())
    nums = torch.zeros(labels.max() + 1, 1, dtype=inputs.dtype)
    nums.index_add_(0, labels, torch.ones(len(labels), 1, dtype=inputs.dtype))
    mask = (nums > 0).to(inputs.dtype)
    sim = sim / (mask * nums + (1 - mask)).expand_as(sim)
    mask = mask.expand_as(sim)
    vec, mask = sim.t().contiguous(), mask.t().contiguous()

    exps = torch.exp(vec)
    one_hot_pos = F.one_hot(targets, num_classes=exps.shape[1])
    one_hot_neg = 1 - one_hot_pos
    masked_exps = exps * mask
    neg_exps = exps.new_zeros(exps.shape)
    neg_exps[one_hot_neg > 0] = masked_exps[one_hot_neg > 0]
    ori_neg_exps = neg_exps.clone()
    neg_exps = neg_exps / neg_exps.sum(dim=1, keepdim=True)
    new_exps = masked_exps.new_zeros(exps.shape)
    new_exps[one_hot_pos > 0] = masked_exps[one_hot_pos > 0]
    srt, _ = torch.sort(neg_exps, dim=1, descending=True)
    cut = (torch.cumsum(srt, dim=1) - top).abs().argmin(dim=1)
    min_values = srt[torch.arange(num), cut].unsqueeze(-1)
    ori_neg_exps = ori_neg_exps * (neg_exps >= min_values)
    new_exps = new_exps + ori_neg_exps * one_hot_neg
    masked_sim = new_exps / (new_exps.sum(1, keepdim=True) + 1e-6)
    return F.nll_loss(torch.log(masked_sim + 1e-6), targets)


def _hand_case(neg_shares, target_score):
    """f = (1, 0); cluster 0 (the target) scores ``target_score``, cluster
    c >= 1 scores 10 + log(neg_shares[c - 1]) (so the negatives' softmax
    shares are exactly ``neg_shares``)."""
    rows = [_unit(target_score * TAU)]
    rows += [_unit(TAU * (10 + math.log(p))) for p in neg_shares]
    memory = torch.tensor(rows, dtype=torch.float64)
    labels = torch.arange(len(rows))
    feats = torch.tensor([[1., 0.]], dtype=torch.float64)
    return feats, torch.tensor([0]), memory, labels


def test_build_from_config():
    loss = MODELS.build(dict(type='ClusterMemoryContrastLoss'))
    assert isinstance(loss, ClusterMemoryContrastLoss)
    assert loss.temperature == 0.05 and loss.top_percent == 0.6
    assert loss.loss_weight == 1.0


def test_cut_keeps_hardest_negatives():
    # shares 0.4, 0.3, 0.2, 0.1: cumsum 0.4, 0.7, 0.9, 1.0 -> closest to
    # 0.6 at index 1 -> keep the 0.4 and 0.3 clusters.
    feats, targets, memory, labels = _hand_case([0.4, 0.3, 0.2, 0.1], 10.)
    loss = ClusterMemoryContrastLoss()(feats, targets, memory, labels)
    e10 = math.exp(10)
    expected = _loss_closed_form(e10, [0.4 * e10, 0.3 * e10])
    assert loss.item() == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(-math.log(1 / 1.7 + 1e-6), abs=1e-8)


def test_cut_keeps_ties():
    # shares 0.4, 0.2, 0.2, 0.2: cut at index 1 (cumsum 0.6); the two other
    # 0.2 clusters tie with the cut one and are kept too.
    feats, targets, memory, labels = _hand_case([0.4, 0.2, 0.2, 0.2], 10.)
    loss = ClusterMemoryContrastLoss()(feats, targets, memory, labels)
    e10 = math.exp(10)
    expected = _loss_closed_form(e10, [e10])
    assert loss.item() == pytest.approx(expected, abs=1e-9)


def test_top_percent_and_weight():
    # top_percent 0.85: cumsum 0.4, 0.7, 0.9, 1.0 -> cut at 0.9 (|0.05|) ->
    # keep 0.4, 0.3, 0.2.
    feats, targets, memory, labels = _hand_case([0.4, 0.3, 0.2, 0.1], 12.)
    loss = ClusterMemoryContrastLoss(top_percent=0.85,
                                     loss_weight=2.)(feats, targets, memory,
                                                     labels)
    e10 = math.exp(10)
    expected = 2 * _loss_closed_form(math.exp(12), [0.9 * e10])
    assert loss.item() == pytest.approx(expected, abs=1e-9)


def test_cluster_score_is_mean_over_slots():
    # cluster 0 = slots (1, 0), (0, 1); cluster 1 = (0.6, 0.8); f = (0.8, 0.6)
    # s_0 = (0.8 + 0.6) / 2 / tau = 14, s_1 = 0.96 / tau = 19.2.
    memory = torch.tensor([[1., 0.], [0., 1.], [0.6, 0.8]],
                          dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    feats = torch.tensor([[0.8, 0.6], [0.8, 0.6]], dtype=torch.float64)
    targets = torch.tensor([1, 0])
    loss = ClusterMemoryContrastLoss()(feats, targets, memory, labels)
    e14, e19 = math.exp(14), math.exp(19.2)
    expected = (_loss_closed_form(e19, [e14]) +
                _loss_closed_form(e14, [e19])) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-9)


def test_empty_cluster_is_masked():
    # label 1 has no slot; unmasked, its zero centroid would add exp(0) = 1.
    memory = torch.tensor([[0., 1.], [0., 1.]], dtype=torch.float64)
    labels = torch.tensor([0, 2])
    feats = torch.tensor([[1., 0.]], dtype=torch.float64)
    loss = ClusterMemoryContrastLoss()(feats, torch.tensor([0]), memory,
                                       labels)
    assert loss.item() == pytest.approx(_loss_closed_form(1., [1.]), abs=1e-12)


def test_single_cluster_no_negatives():
    memory = torch.tensor([[0., 1.], [0., 1.]])
    labels = torch.tensor([0, 0])
    feats = torch.tensor([[1., 0.], [2., 0.]], requires_grad=True)
    loss = ClusterMemoryContrastLoss()(feats, torch.tensor([0, 0]), memory,
                                       labels)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(_loss_closed_form(1., []), abs=1e-7)
    loss.backward()
    assert torch.isfinite(feats.grad).all()


def test_empty_batch_is_connected_zero():
    memory = torch.randn(5, 4)
    feats = torch.zeros(0, 4, requires_grad=True)
    loss = ClusterMemoryContrastLoss()(feats, torch.zeros(0, dtype=torch.long),
                                       memory, torch.arange(5))
    assert loss.item() == 0. and loss.requires_grad
    loss.backward()
    assert feats.grad.shape == (0, 4)


def test_matches_reference_transcription_and_gradients():
    gen = torch.Generator().manual_seed(3)
    num_slots, dim, batch = 60, 16, 24
    memory = F.normalize(torch.randn(num_slots, dim, generator=gen), dim=1)
    # gaps in the labels give empty clusters
    labels = torch.randint(0, 30, (num_slots, ), generator=gen)
    slot_ids = torch.randint(0, num_slots, (batch, ), generator=gen)
    base = torch.randn(batch, dim, generator=gen)
    # pull features close to their slot so that scores spread widely
    base = base * 0.3 + memory[slot_ids]

    feats = base.clone().requires_grad_(True)
    mem = memory.clone().requires_grad_(True)
    loss = ClusterMemoryContrastLoss()(feats, labels[slot_ids], mem, labels)
    loss.backward()

    feats_ref = base.clone().requires_grad_(True)
    ref = _reference_loss(feats_ref, slot_ids, memory, labels)
    ref.backward()

    torch.testing.assert_close(loss, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(feats.grad,
                               feats_ref.grad,
                               atol=1e-6,
                               rtol=1e-5)
    # the memory is a constant
    assert mem.grad is None


def test_matches_reference_in_double_precision():
    gen = torch.Generator().manual_seed(7)
    memory = F.normalize(torch.randn(40, 8, generator=gen,
                                     dtype=torch.float64),
                         dim=1)
    labels = torch.randint(0, 12, (40, ), generator=gen)
    slot_ids = torch.randint(0, 40, (16, ), generator=gen)
    feats = torch.randn(16, 8, generator=gen, dtype=torch.float64)
    loss = ClusterMemoryContrastLoss()(feats, labels[slot_ids], memory, labels)
    ref = _reference_loss(feats, slot_ids, memory, labels)
    assert loss.item() == pytest.approx(ref.item(), abs=1e-12)


def test_instance_memory_input_normalisation_and_fp16():
    memory = InstanceMemory(num_slots=6, feat_dim=4)
    memory.init_features(torch.arange(6), torch.randn(6, 4))
    memory.set_labels(torch.tensor([0, 0, 1, 2, 2, 3]))
    feats = torch.randn(3, 4)
    targets = memory.get_labels(torch.tensor([0, 2, 5]))
    loss_fn = ClusterMemoryContrastLoss()
    loss = loss_fn(feats, targets, memory)
    same = loss_fn(feats, targets, memory.features, memory.labels)
    scaled = loss_fn(3 * feats, targets, memory)
    assert loss.item() == pytest.approx(same.item(), abs=1e-7)
    assert loss.item() == pytest.approx(scaled.item(), abs=1e-5)
    half = loss_fn(feats.half(), targets, memory)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(loss.item(), rel=2e-2, abs=1e-2)
    # gradients flow into the features only, not into the buffers
    feats.requires_grad_(True)
    loss_fn(feats, targets, memory).backward()
    assert feats.grad is not None and memory.features.grad is None


def test_invalid_inputs():
    loss_fn = ClusterMemoryContrastLoss()
    memory, labels = torch.randn(3, 2), torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match='targets must be cluster labels'):
        loss_fn(torch.randn(1, 2), torch.tensor([2]), memory, labels)
    with pytest.raises(ValueError, match='memory_labels is required'):
        loss_fn(torch.randn(1, 2), torch.tensor([0]), memory)
    with pytest.raises(ValueError, match='targets'):
        loss_fn(torch.randn(2, 2), torch.tensor([0]), memory, labels)

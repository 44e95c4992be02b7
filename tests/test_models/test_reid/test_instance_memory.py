# Copyright (c) OpenMMLab. All rights reserved.
import math
from unittest import mock

import mmengine.dist
import pytest
import torch
import torch.nn.functional as F

from mmps.models.reid import InstanceMemory, cluster_centroids
from mmps.registry import MODELS


def _memory(num_slots=4, feat_dim=2, **kwargs):
    return InstanceMemory(num_slots=num_slots, feat_dim=feat_dim, **kwargs)


def _reference_update(features, feats, slot_ids, momentum=0.2):
    """The reference's sequential loop (HM.backward)."""
    features = features.clone()
    for x, y in zip(feats, slot_ids):
        features[y] = momentum * features[y] + (1.0 - momentum) * x
        features[y] /= features[y].norm()
    return features


def test_build_and_initial_state():
    memory = MODELS.build(dict(type='InstanceMemory', num_slots=5))
    assert memory.num_slots == 5 and memory.feat_dim == 256
    assert memory.momentum == 0.2
    assert memory.features.shape == (5, 256)
    assert memory.features.dtype == torch.float32
    assert torch.equal(memory.labels, torch.arange(5))
    assert math.isnan(memory.indep_threshold.item())
    assert not memory.threshold_frozen and not bool(memory.initialized)


def test_init_features_normalises_casts_and_marks():
    memory = _memory()
    feats = torch.tensor([[3., 4.], [0., 2.], [1., 1.]]).half()
    memory.init_features(torch.tensor([2, 0, 2]), feats)
    assert memory.features.dtype == torch.float32
    expected = torch.zeros(4, 2)
    expected[0] = torch.tensor([0., 1.])
    # a repeated slot keeps its last feature
    expected[2] = torch.tensor([1., 1.]) / math.sqrt(2)
    torch.testing.assert_close(memory.features, expected, atol=1e-3, rtol=0)
    assert bool(memory.initialized)


def test_update_rule_with_repeated_slot():
    memory = _memory()
    memory.init_features(
        torch.arange(4), torch.tensor([[1., 0.], [0., 1.], [1., 0.], [1.,
                                                                      0.]]))
    # slot 0 twice (first (0, 1), then (1, 0)), slot 1 once
    feats = torch.tensor([[0., 1.], [1., 0.], [0., 1.]])
    memory.update(feats, torch.tensor([0, 1, 0]))
    # slot 0, step 1: 0.2 (1, 0) + 0.8 (0, 1) = (0.2, 0.8) -> / sqrt(0.68)
    n1 = math.sqrt(0.68)
    v = (0.2 / n1, 0.8 / n1)
    # step 2: 0.2 v + 0.8 (0, 1), renormalised
    w = (0.2 * v[0], 0.2 * v[1] + 0.8)
    n2 = math.hypot(*w)
    # slot 1: 0.2 (0, 1) + 0.8 (1, 0) = (0.8, 0.2) -> / sqrt(0.68)
    expected = torch.tensor([[w[0] / n2, w[1] / n2], [0.8 / n1, 0.2 / n1],
                             [1., 0.], [1., 0.]])
    torch.testing.assert_close(memory.features, expected, atol=1e-7, rtol=1e-6)
    # renormalised
    torch.testing.assert_close(memory.features.norm(dim=1), torch.ones(4))


def test_update_matches_sequential_loop():
    gen = torch.Generator().manual_seed(0)
    memory = _memory(num_slots=10, feat_dim=8)
    memory.init_features(torch.arange(10), torch.randn(10, 8, generator=gen))
    before = memory.features.clone()
    # many repeats, in no particular order
    slot_ids = torch.randint(0, 10, (40, ), generator=gen)
    feats = F.normalize(torch.randn(40, 8, generator=gen), dim=1)
    memory.update(feats, slot_ids)
    expected = _reference_update(before, feats, slot_ids)
    torch.testing.assert_close(memory.features, expected, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_update_with_half_features(dtype):
    memory = _memory(num_slots=3, feat_dim=4)
    memory.init_features(torch.arange(3), torch.eye(3, 4))
    before = memory.features.clone()
    feats = F.normalize(torch.randn(2, 4), dim=1).requires_grad_()
    memory.update(feats.to(dtype), torch.tensor([1, 2]))
    assert memory.features.dtype == torch.float32
    assert not memory.features.requires_grad
    expected = _reference_update(before,
                                 feats.detach().to(dtype).float(),
                                 torch.tensor([1, 2]))
    torch.testing.assert_close(memory.features, expected, atol=1e-6, rtol=1e-6)


def test_state_dict_round_trip():
    memory = _memory(num_slots=3, feat_dim=2)
    memory.init_features(torch.arange(3), torch.randn(3, 2))
    memory.set_labels(torch.tensor([0, 0, 1]))
    memory.indep_threshold.fill_(0.37)
    state = memory.state_dict()
    assert set(state) == {
        'features', 'labels', 'indep_threshold', 'initialized'
    }
    for fresh in (_memory(num_slots=3,
                          feat_dim=2), _memory(num_slots=0, feat_dim=2)):
        fresh.load_state_dict(state)
        assert fresh.num_slots == 3  # a memory of another size is resized
        for key, value in state.items():
            assert torch.equal(getattr(fresh, key), value), key
        assert fresh.threshold_frozen


def test_out_of_range_slot_ids_raise():
    memory = _memory(num_slots=4)
    for bad in ([4], [-1], [0, 7]):
        ids = torch.tensor(bad)
        with pytest.raises(ValueError, match='has 4 slots'):
            memory.update(torch.ones(len(bad), 2), ids)
        with pytest.raises(ValueError, match='has 4 slots'):
            memory.init_features(ids, torch.ones(len(bad), 2))
        with pytest.raises(ValueError, match='has 4 slots'):
            memory.get_labels(ids)
    with pytest.raises(ValueError, match='slot ids'):
        memory.update(torch.ones(2, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match='features'):
        memory.update(torch.ones(2, 3), torch.tensor([0, 1]))


def test_update_without_features_still_gathers():
    memory = _memory()
    memory.init_features(torch.arange(4), torch.randn(4, 2))
    before = memory.features.clone()
    with mock.patch('mmengine.dist.all_gather',
                    wraps=mmengine.dist.all_gather) as gather:
        memory.update(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    # counts, features, slot ids; no zero-size collective
    assert gather.call_count == 3
    assert all(call.args[0].numel() > 0 for call in gather.call_args_list)
    assert torch.equal(memory.features, before)


def _two_ranks(other_feats, other_ids):
    """Fake ``all_gather`` of a 2-rank run seen from rank 0: the other rank
    gathers its count, then its features and slot ids padded to the size
    rank 0 sends (the largest batch)."""
    calls = []

    def fake(data, group=None):
        step = len(calls)
        calls.append(data)
        if step == 0:
            other = torch.tensor([len(other_ids)])
        elif step == 1:
            other = F.pad(other_feats,
                          (0, 0, 0, data.size(0) - len(other_ids)))
        else:
            other = F.pad(other_ids, (0, data.size(0) - len(other_ids)),
                          value=-1)
        return [data, other]

    return fake, calls


def test_update_gathers_variable_batches_in_rank_order():
    memory = _memory()
    memory.init_features(torch.arange(4), torch.eye(2).repeat(2, 1))
    before = memory.features.clone()
    other_feats = torch.tensor([[0., 1.], [1., 0.], [0.6, 0.8]])
    other_ids = torch.tensor([3, 0, 0])
    fake, calls = _two_ranks(other_feats, other_ids)
    mine = torch.tensor([[0.8, 0.6]])
    with mock.patch('mmengine.dist.all_gather', side_effect=fake):
        memory.update(mine, torch.tensor([0]))
    assert len(calls) == 3 and calls[1].shape == (3, 2)
    expected = _reference_update(before, torch.cat([mine, other_feats]),
                                 torch.tensor([0, 3, 0, 0]))
    torch.testing.assert_close(memory.features, expected, atol=1e-7, rtol=1e-6)

    # this rank has no positive: it still takes part and applies the
    # other rank's updates
    memory = _memory()
    memory.init_features(torch.arange(4), torch.eye(2).repeat(2, 1))
    fake, calls = _two_ranks(other_feats, other_ids)
    with mock.patch('mmengine.dist.all_gather', side_effect=fake):
        memory.update(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    assert len(calls) == 3
    expected = _reference_update(before, other_feats, other_ids)
    torch.testing.assert_close(memory.features, expected, atol=1e-7, rtol=1e-6)


def test_labels_and_centroids():
    memory = _memory(num_slots=4)
    memory.init_features(
        torch.arange(4), torch.tensor([[1., 0.], [0., 1.], [1., 0.], [0.,
                                                                      3.]]))
    memory.set_labels(torch.tensor([0, 0, 2, 2]))
    assert torch.equal(memory.get_labels(torch.tensor([3, 0])),
                       torch.tensor([2, 0]))
    centroids, counts = cluster_centroids(memory.features, memory.labels)
    torch.testing.assert_close(
        centroids, torch.tensor([[0.5, 0.5], [0., 0.], [0.5, 0.5]]))
    assert torch.equal(counts, torch.tensor([2, 0, 2]))
    with pytest.raises(ValueError, match='expected 4 labels'):
        memory.set_labels(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='non-negative'):
        memory.set_labels(torch.tensor([0, -1, 1, 1]))
    with pytest.raises(ValueError, match='non-negative'):
        cluster_centroids(torch.zeros(2, 2), torch.tensor([0, -1]))


def test_resize():
    memory = _memory(num_slots=0)
    assert memory.num_slots == 0
    with pytest.raises(ValueError, match='has 0 slots'):
        memory.update(torch.ones(1, 2), torch.tensor([0]))
    memory.resize_(3)
    assert memory.features.shape == (3, 2)
    assert torch.equal(memory.labels, torch.arange(3))
    memory.init_features(torch.arange(3), torch.ones(3, 2))
    memory.resize_(3)  # same size: kept
    assert bool(memory.initialized) and memory.features.abs().sum() > 0
    memory.resize_(2)  # new size: reset
    assert not bool(memory.initialized)
    assert memory.features.abs().sum() == 0
    assert 'features' in dict(memory.named_buffers())
    with pytest.raises(ValueError, match='num_slots'):
        memory.resize_(-1)
    with pytest.raises(ValueError, match='momentum'):
        InstanceMemory(momentum=1.5)


def test_init_features_gather_option():
    memory = _memory()
    with mock.patch('mmengine.dist.all_gather',
                    wraps=mmengine.dist.all_gather) as gather:
        memory.init_features(torch.tensor([1]), torch.tensor([[0., 2.]]))
        assert gather.call_count == 0  # no collective by default
        memory.init_features(torch.tensor([3, 2]),
                             torch.tensor([[2., 0.], [0., -1.]]),
                             gather=True)
        assert gather.call_count == 3
    expected = torch.tensor([[0., 0.], [0., 1.], [0., -1.], [1., 0.]])
    torch.testing.assert_close(memory.features, expected)


def test_a_checkpoint_with_the_former_image_ids_buffer_loads():
    """Older checkpoints hold ``image_ids`` (now read from the dataset)."""
    memory = _memory(num_slots=3, feat_dim=2)
    memory.init_features(torch.arange(3), torch.randn(3, 2))
    state = dict(memory.state_dict(), image_ids=torch.tensor([0, 0, 1]))
    fresh = _memory(num_slots=0, feat_dim=2)
    fresh.load_state_dict(state)  # strict
    assert not hasattr(fresh, 'image_ids')
    torch.testing.assert_close(fresh.features, memory.features)
    assert 'image_ids' in state  # the caller's dict is left as it was

# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch

from mmps.models.losses import BatchHardTripletWithBackgroundLoss
from mmps.registry import MODELS

# x0 = (0, 0), x1 = (1, 0) in cluster 0; x2 = (0, 2), x3 = (3, 0) in
# cluster 1; b = (0, -1) background.
FG = [[0., 0.], [1., 0.], [0., 2.], [3., 0.]]
BG = [[0., -1.]]
S5, S13, S2, S10 = math.sqrt(5), math.sqrt(13), math.sqrt(2), math.sqrt(10)


def _relu(x):
    return max(x, 0.)


# hardest positive / hardest negative per anchor:
#   x0: d01 = 1 / min(d02, d03) = 2;  x1: d10 = 1 / min(d12, d13) = 2
#   x2: d23 = sqrt13 / min(d20, d21) = 2;  x3: d32 = sqrt13 / min(3, 2) = 2
TRIPLET = (_relu(1 - 2 + .3) + _relu(1 - 2 + .3) + 2 * _relu(S13 - 2 + .3)) / 4
# farthest foreground (any cluster) / nearest background per anchor:
#   x0: 3 / 1;  x1: sqrt5 / sqrt2;  x2: sqrt13 / 3;  x3: sqrt13 / sqrt10
BG_TERM = (_relu(3 - 1 + .3) + _relu(S5 - S2 + .3) + _relu(S13 - 3 + .3) +
           _relu(S13 - S10 + .3)) / 4


def test_values_with_background():
    loss_fn = MODELS.build(dict(type='BatchHardTripletWithBackgroundLoss'))
    assert loss_fn.margin == 0.3 and loss_fn.bg_weight == 0.25
    # background first and labelled -1 and -2: order and value do not matter
    feats = torch.tensor(BG + FG + BG, dtype=torch.float64)
    labels = torch.tensor([-1, 0, 0, 1, 1, -2])
    loss = loss_fn(feats, labels)
    assert loss.item() == pytest.approx(TRIPLET + 0.25 * BG_TERM, abs=1e-9)


def test_values_without_background_and_weights():
    feats = torch.tensor(FG, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    loss = BatchHardTripletWithBackgroundLoss(loss_weight=2.)(feats, labels)
    assert loss.item() == pytest.approx(2 * TRIPLET, abs=1e-9)
    feats = torch.tensor(FG + BG, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, -1])
    loss = BatchHardTripletWithBackgroundLoss(margin=0.3, bg_weight=0.)(feats,
                                                                        labels)
    assert loss.item() == pytest.approx(TRIPLET, abs=1e-9)


def test_self_distance_is_reference_epsilon():
    # each anchor is alone in its cluster: its hardest positive is itself at
    # the reference's clamped distance sqrt(1e-12) = 1e-6
    feats = torch.tensor([[0., 0.], [0.1, 0.]], dtype=torch.float64)
    loss = BatchHardTripletWithBackgroundLoss()(feats, torch.tensor([3, 7]))
    assert loss.item() == pytest.approx(1e-6 - 0.1 + 0.3, abs=1e-12)


def test_gradients_flow_to_features():
    feats = torch.tensor(FG + BG, requires_grad=True)
    loss = BatchHardTripletWithBackgroundLoss()(feats,
                                                torch.tensor([0, 0, 1, 1, -1]))
    loss.backward()
    assert torch.isfinite(feats.grad).all()
    assert feats.grad[2:].abs().sum() > 0


@pytest.mark.parametrize(
    'labels',
    [
        [-1, -1, -1, -1, -1],  # all background
        [4, 4, 4, 4, -1],  # one cluster (+ background): the reference gives 0
        [],  # nothing
    ])
def test_no_valid_triplet_is_connected_zero(labels):
    feats = torch.randn(len(labels), 2, requires_grad=True)
    loss = BatchHardTripletWithBackgroundLoss()(feats,
                                                torch.tensor(labels,
                                                             dtype=torch.long))
    assert loss.item() == 0. and loss.requires_grad
    loss.backward()
    assert torch.equal(feats.grad, torch.zeros_like(feats))


def test_half_precision_and_label_check():
    feats = torch.tensor(FG).half()
    loss = BatchHardTripletWithBackgroundLoss()(feats,
                                                torch.tensor([0, 0, 1, 1]))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(TRIPLET, abs=1e-3)
    with pytest.raises(ValueError, match='labels'):
        BatchHardTripletWithBackgroundLoss()(feats, torch.tensor([0, 1]))


def _reference_quaduplet(inputs, targets, margin=0.3, bg_weight=0.25):
    """Transcription of the reference ``Quaduplet2Loss.forward`` (per-anchor
    loops, ``MarginRankingLoss``); requires background RoIs and >= 2
    clusters, as the reference does."""
    ranking = torch.nn.MarginRankingLoss(margin=margin)
    fg = [i for i in range(len(targets)) if targets[i] >= 0]
    bg = torch.stack(
        [inputs[i] for i in range(len(targets)) if targets[i] < 0])
    x = torch.stack([inputs[i] for i in fg])
    y = torch.stack([targets[i] for i in fg])
    n, m = x.size(0), bg.size(0)
    dist = x.pow(2).sum(1, keepdim=True).expand(n, n)
    dist = dist + dist.t() - 2 * x @ x.t()
    dist = dist.clamp(min=1e-12).sqrt()
    mask = y.expand(n, n).eq(y.expand(n, n).t())
    ap = torch.stack([dist[i][mask[i]].max() for i in range(n)])
    an = torch.stack([dist[i][mask[i] == 0].min() for i in range(n)])
    loss = ranking(an, ap, torch.ones_like(an))
    dist_new = (x.pow(2).sum(1, keepdim=True).expand(n, m) +
                bg.pow(2).sum(1, keepdim=True).expand(m, n).t() -
                2 * x @ bg.t()).clamp(min=1e-12).sqrt()
    ap = torch.stack([dist[i].max() for i in range(n)])
    an = torch.stack([dist_new[i].min() for i in range(n)])
    return loss + bg_weight * ranking(an, ap, torch.ones_like(an))


def test_matches_reference_transcription():
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(30, 8, generator=gen) * 0.4
    labels = torch.randint(-1, 6, (30, ), generator=gen)
    labels[:2] = torch.tensor([-1, 0])
    labels[2] = 1
    x1 = base.clone().requires_grad_()
    loss = BatchHardTripletWithBackgroundLoss()(x1, labels)
    loss.backward()
    x2 = base.clone().requires_grad_()
    ref = _reference_quaduplet(x2, labels)
    ref.backward()
    assert loss.item() > 0
    torch.testing.assert_close(loss, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-6, rtol=1e-5)

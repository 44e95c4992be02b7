# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmps.models.losses import DenseSimilarityKLLoss
from mmps.registry import MODELS


def _sigmoid(z):
    return 1. / (1. + math.exp(-z))


def _binary_sym_kl(a, b):
    """Symmetric KL between the distributions (a, 1 - a) and (b, 1 - b)."""
    return ((b - a) * (math.log(b) - math.log(a)) + (a - b) *
            (math.log(1 - b) - math.log(1 - a)))


def _two_by_two(temperature):
    """Closed form for P = [(1, 0), (0, 1)] (p1.p2 = 0) and
    G = [(1, 0), (0.6, 0.8)] (g1.g2 = 0.6): every row of softmax(P P^T / T)
    is a permutation of (sigmoid(1/T), 1 - sigmoid(1/T)), and of G's of
    (sigmoid(0.4/T), ...); both rows give the same symmetric KL."""
    a = _sigmoid(1. / temperature)
    b = _sigmoid(0.4 / temperature)
    return 2 * _binary_sym_kl(a, b)  # summed over the 2 rows


P = [[1., 0.], [0., 1.]]
G = [[1., 0.], [0.6, 0.8]]


@pytest.mark.parametrize('reduction,divisor', [('mean', 4.), ('batchmean', 2.),
                                               ('sum', 1.)])
@pytest.mark.parametrize('temperature', [1.0, 0.5])
def test_closed_form(reduction, divisor, temperature):
    p = torch.tensor(P, dtype=torch.float64)
    g = torch.tensor(G, dtype=torch.float64)
    loss = DenseSimilarityKLLoss(temperature=temperature,
                                 reduction=reduction)(p, g)
    expected = 0.1 * _two_by_two(temperature) / divisor
    assert loss.item() == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_defaults_match_reference_expression():
    loss_fn = MODELS.build(dict(type='DenseSimilarityKLLoss'))
    assert loss_fn.loss_weight == 0.1 and loss_fn.reduction == 'mean'
    assert loss_fn.temperature == 1.0 and loss_fn.detach is None
    gen = torch.Generator().manual_seed(1)
    p = F.normalize(torch.randn(7, 16, generator=gen), dim=1)
    g = F.normalize(torch.randn(7, 16, generator=gen), dim=1)
    p1, g1 = p.clone().requires_grad_(), g.clone().requires_grad_()
    loss = loss_fn(p1, g1)
    loss.backward()
    # the reference's two lines (coefficient 0.1, default kl_div reduction)
    p2, g2 = p.clone().requires_grad_(), g.clone().requires_grad_()
    sim_pred = F.log_softmax(p2 @ p2.t(), dim=-1)
    sim_gt = F.log_softmax(g2 @ g2.t(), dim=-1)
    ref = 0.1 * (F.kl_div(sim_pred, sim_gt, log_target=True) +
                 F.kl_div(sim_gt, sim_pred, log_target=True))
    ref.backward()
    torch.testing.assert_close(loss, ref, atol=1e-8, rtol=1e-6)
    # the reference detaches neither side
    torch.testing.assert_close(p1.grad, p2.grad, atol=1e-8, rtol=1e-5)
    torch.testing.assert_close(g1.grad, g2.grad, atol=1e-8, rtol=1e-5)
    assert p1.grad.abs().sum() > 0 and g1.grad.abs().sum() > 0


@pytest.mark.parametrize('side', ['scene', 'instance'])
def test_detach_option(side):
    p = torch.tensor(P, requires_grad=True)
    g = torch.tensor(G, requires_grad=True)
    loss = DenseSimilarityKLLoss(detach=side)(p, g)
    assert loss.item() == pytest.approx(0.1 * _two_by_two(1.) / 4, rel=1e-5)
    loss.backward()
    assert (p.grad is None) == (side == 'scene')
    assert (g.grad is None) == (side == 'instance')


def test_identical_inputs_and_small_batches():
    p = torch.tensor(P)
    assert DenseSimilarityKLLoss()(p,
                                   p.clone()).item() == pytest.approx(0.,
                                                                      abs=1e-9)
    for num in (0, 1):
        x = torch.randn(num, 4, requires_grad=True)
        y = torch.randn(num, 4, requires_grad=True)
        loss = DenseSimilarityKLLoss()(x, y)
        assert loss.item() == 0. and loss.requires_grad
        loss.backward()


def test_reduction_override_and_errors():
    p = torch.tensor(P, dtype=torch.float64)
    g = torch.tensor(G, dtype=torch.float64)
    loss = DenseSimilarityKLLoss()(p, g, reduction_override='sum')
    assert loss.item() == pytest.approx(0.1 * _two_by_two(1.), rel=1e-6)
    with pytest.raises(ValueError, match='reduction'):
        DenseSimilarityKLLoss(reduction='none')
    with pytest.raises(ValueError, match='detach'):
        DenseSimilarityKLLoss(detach='both')
    with pytest.raises(ValueError, match='same shape'):
        DenseSimilarityKLLoss()(torch.zeros(2, 4), torch.zeros(3, 4))

# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch

from mmps.models.losses import ManyToOneLoss
from mmps.registry import MODELS


def test_values_and_gradients():
    loss_fn = MODELS.build(dict(type='ManyToOneLoss'))
    assert loss_fn.loss_weight == 1.0
    p = torch.tensor([[1., 0.], [0.6, 0.8]], requires_grad=True)
    # one crop feeds both proposals (many-to-one)
    g = torch.tensor([[0.6, 0.8], [0.6, 0.8]], requires_grad=True)
    loss = loss_fn(p, g)
    # mean(1 - 0.6, 1 - 1.0) = 0.2
    assert loss.item() == pytest.approx(0.2, abs=1e-7)
    loss.backward()
    # d/dp_i = -g_i / B, d/dg_i = -p_i / B: both sides learn
    torch.testing.assert_close(p.grad, -g.detach() / 2)
    torch.testing.assert_close(g.grad, -p.detach() / 2)


def test_sum_and_weight():
    p = torch.tensor([[1., 0.], [0., 1.]])
    g = torch.tensor([[0., 1.], [0., 1.]])
    loss = ManyToOneLoss(reduction='sum', loss_weight=0.5)(p, g)
    assert loss.item() == pytest.approx(0.5 * (1. + 0.), abs=1e-7)


def test_empty_is_connected_zero():
    p = torch.zeros(0, 4, requires_grad=True)
    g = torch.zeros(0, 4, requires_grad=True)
    loss = ManyToOneLoss()(p, g)
    assert loss.item() == 0. and loss.requires_grad
    loss.backward()


def test_half_inputs_and_shape_check():
    p = torch.tensor([[1., 0.]]).half()
    g = torch.tensor([[0.6, 0.8]]).half()
    loss = ManyToOneLoss()(p, g)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(0.4, abs=1e-3)
    with pytest.raises(ValueError, match='same shape'):
        ManyToOneLoss()(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match='reduction'):
        ManyToOneLoss(reduction='none')

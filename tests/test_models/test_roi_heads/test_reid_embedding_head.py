# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmps.registry import MODELS


def test_flatten_linear_normalise():
    head = MODELS.build(
        dict(
            type='ReIDEmbeddingHead',
            in_channels=4,
            roi_size=(14, 6),
            out_channels=16))
    head.init_weights()
    assert head.fc.in_features == 4 * 14 * 6
    x = torch.randn(5, 4, 14, 6)
    out = head(x)
    assert out.shape == (5, 16)
    assert torch.allclose(out.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(out, F.normalize(head.fc(x.flatten(1)), dim=1))
    assert head(torch.zeros(0, 4, 14, 6)).shape == (0, 16)


def test_default_is_256_d_on_14x6():
    head = MODELS.build(dict(type='ReIDEmbeddingHead', in_channels=2))
    assert head.roi_size == (14, 6) and head.out_channels == 256


def test_wrong_feature_size_fails_loudly():
    head = MODELS.build(dict(type='ReIDEmbeddingHead', in_channels=4))
    with pytest.raises(ValueError, match='expects'):
        head(torch.randn(2, 4, 7, 7))

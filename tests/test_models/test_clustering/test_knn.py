# Copyright (c) OpenMMLab. All rights reserved.
"""The exact kNN engine against a row-by-row float64 ranking (the point
first, ties to the lower index)."""
import numpy as np
import pytest
import torch

from mmps.models.clustering import exact_knn


def clustered_features(n, dim, seed, dup=0.1, noise=0.6):
    """Clustered features (about 6 per identity), ``dup`` of them exact
    copies of others."""
    rng = np.random.default_rng(seed)
    ids = max(1, n // 6)
    protos = rng.standard_normal((ids, dim))
    feats = protos[rng.integers(0, ids, n)] + noise * rng.standard_normal(
        (n, dim))
    num_dup = int(n * dup)
    if num_dup:
        feats[rng.choice(n, num_dup,
                         replace=False)] = feats[rng.integers(0, n, num_dup)]
    return feats


def reference_similarity(x):
    """Cosine similarities computed row by row (not a matrix product), so
    that duplicate points tie exactly."""
    return np.stack([(x * x[i]).sum(axis=1) for i in range(len(x))])


def reference_rank(x, k):
    """k nearest neighbours: the point first, then by similarity, ties to the
    lower index (the reference leaves ties to faiss)."""
    n = len(x)
    sims = reference_similarity(x)
    np.fill_diagonal(sims, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(n), (n, n)), -sims), axis=-1)
    return order[:, :k]


@pytest.mark.parametrize('n,copies', [(700, 0), (500, 40)])
def test_exact_knn_ties(n, copies):
    feats = clustered_features(n, 16, seed=n, dup=0.2)
    if copies:  # more copies of one point than the kept candidates
        feats[:copies] = feats[-1]
    x = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    ref = reference_rank(x, 30)
    np.testing.assert_array_equal(exact_knn(feats, 30, chunk_size=128), ref)
    np.testing.assert_array_equal(
        exact_knn(torch.from_numpy(feats).float(), 1),
        np.arange(n)[:, None])


def test_exact_knn_bad_k():
    with pytest.raises(ValueError):
        exact_knn(np.ones((3, 2)), 4)

# Copyright (c) OpenMMLab. All rights reserved.
"""The sparse k-reciprocal Jaccard distance against a dense transcription
of the reference (SpCL / DICL ``compute_jaccard_distance``)."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN

from mmps.models.clustering import dbscan_labels, k_reciprocal_jaccard
from .test_knn import clustered_features, reference_rank


def dense_reference_jaccard(features, k1=30, k2=6):
    """Line by line transcription of ``compute_jaccard_distance`` (N x N).

    faiss is asked for ``k1`` neighbours there, so ``initial_rank`` has
    ``k1`` columns (fewer when N < k1) and its ``[:, :k1 + 1]`` slices are
    the ``k1`` of them.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    initial_rank = reference_rank(x, min(k1, n))

    def k_reciprocal_neigh(i, k):
        forward_k_neigh_index = initial_rank[i, :k + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, :k + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        return forward_k_neigh_index[fi]

    nn_k1 = [k_reciprocal_neigh(i, k1) for i in range(n)]
    nn_k1_half = [
        k_reciprocal_neigh(i, int(np.around(k1 / 2))) for i in range(n)
    ]
    V = np.zeros((n, n))
    for i in range(n):
        k_reciprocal_index = nn_k1[i]
        k_reciprocal_expansion_index = k_reciprocal_index
        for candidate in k_reciprocal_index:
            candidate_k_reciprocal_index = nn_k1_half[candidate]
            if len(
                    np.intersect1d(candidate_k_reciprocal_index,
                                   k_reciprocal_index)
            ) > 2 / 3 * len(candidate_k_reciprocal_index):
                k_reciprocal_expansion_index = np.append(
                    k_reciprocal_expansion_index, candidate_k_reciprocal_index)
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        y = x[k_reciprocal_expansion_index]
        dist = (x[i]**2).sum() + (y**2).sum(axis=1) - 2 * y @ x[i]
        weight = np.exp(-dist - (-dist).max())  # softmax(-dist)
        V[i, k_reciprocal_expansion_index] = weight / weight.sum()
    if k2 != 1:
        V_qe = np.zeros_like(V)
        for i in range(n):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    jaccard_dist = np.zeros((n, n))
    for i in range(n):
        ind_non_zero = np.where(V[i, :] != 0)[0]
        # sum over the columns where both rows are non-zero: min() is 0
        # where V[j] is zero
        temp_min = np.minimum(V[i, ind_non_zero][None],
                              V[:, ind_non_zero]).sum(axis=1)
        jaccard_dist[i] = 1 - temp_min / (2 - temp_min)
    jaccard_dist[jaccard_dist < 0] = 0.0
    return jaccard_dist


def densify(dist):
    """The dense matrix of a sparse Jaccard matrix (missing pairs: 1)."""
    out = np.ones(dist.shape)
    coo = dist.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


@pytest.mark.parametrize('seed,n,dim,k1,k2', [
    (0, 300, 16, 30, 6),
    (1, 700, 32, 30, 6),
    (2, 250, 8, 20, 1),
    (3, 200, 16, 7, 3),
])
def test_equals_dense_reference(seed, n, dim, k1, k2):
    feats = clustered_features(n, dim, seed)
    ref = dense_reference_jaccard(feats, k1, k2)
    dist = k_reciprocal_jaccard(feats, k1=k1, k2=k2, chunk_size=128)
    assert isinstance(dist, sp.csr_matrix) and dist.shape == (n, n)
    assert dist.has_sorted_indices
    np.testing.assert_allclose(densify(dist), ref, rtol=0, atol=1e-5)
    # exactly the pairs that share a neighbour are stored
    coo = dist.tocoo()
    stored = np.zeros((n, n), dtype=bool)
    stored[coo.row, coo.col] = True
    assert (stored == (ref < 1)).all()
    assert (dist != dist.T).nnz == 0
    assert (dist.diagonal() == 0).all() and np.isfinite(dist.data).all()


def test_max_distance_and_dbscan_equal_dense():
    n = 2000
    feats = clustered_features(n, 32, seed=5)
    ref = dense_reference_jaccard(feats)
    dist = k_reciprocal_jaccard(feats, max_distance=0.72)
    coo = dist.tocoo()
    np.testing.assert_allclose(coo.data, ref[coo.row, coo.col], atol=1e-5)
    kept = np.zeros((n, n), dtype=bool)
    kept[coo.row, coo.col] = True
    borderline = np.abs(ref - 0.72) < 1e-9
    assert ((kept == (ref <= 0.72)) | borderline).all()
    assert dist.nnz < 20 * n  # sparse indeed
    for eps in (0.68, 0.70, 0.72):
        sparse_labels = dbscan_labels(dist, eps, 4)
        dense_labels = DBSCAN(
            eps=eps, min_samples=4, metric='precomputed').fit_predict(ref)
        # same clusters, outliers as singletons in index order
        outliers = dense_labels < 0
        num = dense_labels.max() + 1
        dense_labels[outliers] = np.arange(num, num + outliers.sum())
        np.testing.assert_array_equal(sparse_labels, dense_labels)
        np.testing.assert_array_equal(sparse_labels,
                                      dbscan_labels(densify(dist), eps, 4))


def test_duplicates_have_distance_zero():
    feats = clustered_features(120, 8, seed=3, dup=0)
    feats[10] = feats[11] = feats[12] = feats[3]
    dist = k_reciprocal_jaccard(feats, k1=10, k2=3)
    np.testing.assert_allclose(
        densify(dist), dense_reference_jaccard(feats, 10, 3), atol=1e-5)
    block = dist[[3, 10, 11, 12]][:, [3, 10, 11, 12]]
    assert block.nnz == 16  # stored (explicit zeros kept)
    np.testing.assert_allclose(block.toarray(), 0, atol=1e-12)


@pytest.mark.parametrize('n', [1, 2, 5, 29])
def test_fewer_points_than_k1(n):
    feats = clustered_features(max(n, 1), 4, seed=n, dup=0)[:n]
    dist = k_reciprocal_jaccard(feats, k1=30, k2=6)
    assert dist.shape == (n, n)
    np.testing.assert_allclose(
        densify(dist), dense_reference_jaccard(feats), atol=1e-5)
    if n == 1:
        assert dist.nnz == 1 and dist[0, 0] == 0


def test_empty_and_bad_inputs():
    dist = k_reciprocal_jaccard(np.zeros((0, 8)))
    assert dist.shape == (0, 0) and dist.nnz == 0
    with pytest.raises(ValueError):
        k_reciprocal_jaccard(np.zeros(8))
    with pytest.raises(ValueError):
        k_reciprocal_jaccard(np.ones((3, 2)), k1=0)


def test_torch_input_and_determinism():
    feats = clustered_features(400, 16, seed=7)
    a = k_reciprocal_jaccard(feats, max_distance=0.8)
    b = k_reciprocal_jaccard(torch.from_numpy(feats), max_distance=0.8)
    c = k_reciprocal_jaccard(feats * 3.0, max_distance=0.8, chunk_size=64)
    for other in (b, c):
        np.testing.assert_array_equal(a.indptr, other.indptr)
        np.testing.assert_array_equal(a.indices, other.indices)
        np.testing.assert_allclose(a.data, other.data, atol=1e-12)
    b = k_reciprocal_jaccard(feats, max_distance=0.8)
    np.testing.assert_array_equal(a.data, b.data)

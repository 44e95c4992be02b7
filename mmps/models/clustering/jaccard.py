# Copyright (c) OpenMMLab. All rights reserved.
"""Sparse k-reciprocal Jaccard distance (re-ranking distance of SpCL / DICL).

The reference, ``compute_jaccard_distance`` of SpCL (reused by CGPS and
DICL), fills an N x N float32 matrix (36 GB for the 55,272 CUHK-SYSU boxes).
This module computes the same numbers for the pairs that share a
k-reciprocal neighbour only (all other pairs have distance 1), optionally
only for the pairs within a ``max_distance``, and never holds an N x N array:

1. Exact k nearest neighbours by cosine similarity (:mod:`.knn`, whose
   conventions hold here: the point itself first, ties to the lower index).
2. k-reciprocal sets, their expansion and the weights ``V`` as sparse rows;
   local query expansion as a sparse product.
3. ``m_ij = sum_k min(V_ik, V_jk)`` for the candidate pairs: an upper bound
   (``min(a, b) <= sqrt(a b)`` on the large entries of each row, plus the
   mass of the small ones) is a sparse matrix product that discards almost
   every pair below the overlap a ``max_distance`` needs; the candidates'
   ``m`` is then computed exactly.

Conventions, those of the reference unless noted:

* faiss is asked for ``k1`` neighbours, so although the reference slices
  ``initial_rank[i, :k1 + 1]``, the k-reciprocal sets come from the first
  ``k1`` ranks *including the point itself*, the half sets from the first
  ``round(k1 / 2) + 1`` ranks (numpy rounding), and query expansion averages
  the rows of the first ``k2`` ranks (the point included). With fewer than
  ``k1`` points, all points are neighbours (the reference would index the
  ``-1`` that faiss returns).
* A candidate's half set joins the expansion when
  ``|R_half(c) & R(i)| > 2/3 |R_half(c)|``.
* ``V[i, j] = softmax_j(-||x_i - x_j||^2)`` over the expanded set of ``i``,
  in float64 (the reference: float32).
* Jaccard distance ``1 - m / (2 - m)`` (rows of ``V`` sum to 1), clipped at
  0; the diagonal is exactly 0.
"""
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from mmengine.utils import ProgressBar

from .knn import ArrayLike, normalize_features, ranked_knn, sampled_dots

__all__ = ['k_reciprocal_jaccard']


def _reciprocal_mask(rank: np.ndarray, k: int) -> np.ndarray:
    """``mask[i, a]``: ``rank[i, a]`` has ``i`` among its first ``k`` ranks
    (for ``a < k``)."""
    n = rank.shape[0]
    mask = np.empty((n, k), dtype=bool)
    step = max(1, 2**22 // (k * k))
    for s in range(0, n, step):
        fwd = rank[s:s + step, :k]
        bwd = rank[fwd, :k]
        own = np.arange(s, s + len(fwd))[:, None, None]
        mask[s:s + step] = (bwd == own).any(axis=2)
    return mask


def _expanded_sets(rank: np.ndarray, k1: int, kh: int) -> sp.csr_matrix:
    """Binary (N, N) matrix of the expanded k-reciprocal sets."""
    n = rank.shape[0]
    mask = _reciprocal_mask(rank, k1)
    mask_h = _reciprocal_mask(rank, kh)
    len_h = mask_h.sum(axis=1)
    # each row's k-reciprocal set, sorted, absent entries as n (never found)
    sets = np.where(mask, rank[:, :k1], n)
    sets.sort(axis=1)
    sets_t = torch.from_numpy(sets)
    pieces = []
    step = max(1, 2**20 // (k1 * kh))
    for s in range(0, n, step):
        e = min(n, s + step)
        r = np.arange(s, e)
        cands = rank[s:e, :k1]  # (B, k1) candidates (valid where mask)
        half = rank[cands, :kh]  # (B, k1, kh) their half neighbours
        half_ok = mask_h[cands]  # (B, k1, kh)
        q = torch.from_numpy(half.reshape(len(r), -1))
        pos = torch.searchsorted(sets_t[s:e], q).clamp_max_(k1 - 1)
        found = (sets_t[s:e].gather(1, pos) == q).numpy().reshape(half.shape)
        inter = (found & half_ok).sum(axis=2)
        accept = mask[s:e] & (inter > 2 / 3 * len_h[cands])
        # members: own k-reciprocal set + accepted candidates' half sets
        own_rows, own_cols = np.nonzero(mask[s:e])
        acc_r, acc_c = np.nonzero(accept)
        hsel = half_ok[acc_r, acc_c]  # (A, kh)
        h_rows = np.repeat(acc_r, hsel.sum(axis=1))
        h_cols = half[acc_r, acc_c][hsel]
        rows = np.concatenate([own_rows, h_rows])
        cols = np.concatenate([rank[s:e, :k1][own_rows, own_cols], h_cols])
        block = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)),
            shape=(e - s, n))
        block.sum_duplicates()
        pieces.append(block)
    return sp.vstack(pieces, format='csr')


def _softmax_weights(f64: torch.Tensor, sets: sp.csr_matrix) -> sp.csr_matrix:
    """``V[i, j] = softmax_j(-||x_i - x_j||^2)`` over each row's set."""
    n = f64.shape[0]
    counts = np.diff(sets.indptr)
    rows = np.repeat(np.arange(n), counts)
    sq = (f64 * f64).sum(dim=1).numpy()
    dot = sampled_dots(f64, f64, sets.indptr, sets.indices)
    dist = sq[rows] + sq[sets.indices] - 2 * dot
    starts = sets.indptr[:-1]
    row_min = np.minimum.reduceat(dist, starts)
    w = np.exp(-(dist - np.repeat(row_min, counts)))
    w /= np.repeat(np.add.reduceat(w, starts), counts)
    return sp.csr_matrix((w, sets.indices, sets.indptr), shape=(n, n))


def _query_expansion(v: sp.csr_matrix, rank: np.ndarray,
                     k2: int) -> sp.csr_matrix:
    """Average the rows of ``V`` over the first ``k2`` ranks of each row."""
    n = v.shape[0]
    avg = sp.csr_matrix((np.full(n * k2, 1.0 / k2), rank[:, :k2].reshape(-1),
                         np.arange(0, n * k2 + 1, k2)),
                        shape=(n, n))
    out = (avg @ v).tocsr()
    out.sum_duplicates()
    out.sort_indices()
    return out


def _heavy_light(v: sp.csr_matrix,
                 light_mass: float) -> Tuple[sp.csr_matrix, np.ndarray]:
    """Split each row into its smallest entries of total mass below
    ``light_mass`` (light) and the rest (heavy).

    Returns:
        tuple: ``sqrt`` of the heavy entries (CSR, sorted indices) and the
        light mass of each row.
    """
    n = v.shape[0]
    counts = np.diff(v.indptr)
    rows = np.repeat(np.arange(n), counts)
    # ascending values within each row (values are in (0, 1]; the split is
    # valid for any order, the exact light mass is what is used)
    order = np.argsort(rows * 2.0 + v.data)
    vals = v.data[order]
    cum = np.cumsum(vals)
    row_base = np.repeat(cum[v.indptr[:-1]] - vals[v.indptr[:-1]], counts)
    light = (cum - row_base) < light_mass
    ell = np.bincount(rows[order[light]], weights=vals[light], minlength=n)
    heavy = np.sort(order[~light])  # back to row-major, sorted columns
    root = sp.csr_matrix(
        (np.sqrt(v.data[heavy]), v.indices[heavy],
         np.concatenate([[0],
                         np.cumsum(np.bincount(rows[heavy], minlength=n))])),
        shape=(n, n))
    return root, ell


def _overlapping_pairs(v: sp.csr_matrix,
                       min_overlap: float,
                       block: int = 2048) -> Tuple[np.ndarray, np.ndarray]:
    """Pairs ``j >= i`` that may have ``sum_k min(V_ik, V_jk) >= min_overlap``.

    With each row split into heavy entries and light ones of mass
    ``l_i < min_overlap / 2``, ``sum_k min(V_ik, V_jk) <= B_ij + l_i + l_j``
    where ``B_ij = sum_k sqrt(V_ik V_jk)`` over the columns heavy in both
    rows (as ``min(a, b) <= sqrt(a b)``); ``B`` is a sparse product, computed
    tile by tile over the upper triangle, and pairs sharing no heavy column
    cannot reach ``min_overlap``. Every pair whose bound reaches
    ``min_overlap`` is returned (every pair sharing a column when
    ``min_overlap <= 0``), in row-major order.
    """
    n = v.shape[0]
    if min_overlap > 0:
        root, ell = _heavy_light(v, min(0.15, min_overlap / 2 - 1e-9))
    else:
        root, ell = v.sqrt(), np.zeros(n)
    thr = min_overlap - 1e-9
    starts = range(0, n, block)
    right = [root[s:s + block].T.tocsr() for s in starts]
    ell_max = [ell[s:s + block].max() for s in starts]
    rows, cols = [], []
    for a, sa in enumerate(starts):
        left = root[sa:sa + block]
        for b in range(a, len(right)):
            sb = starts[b]
            prod = (left @ right[b]).tocsr()
            # cheap first cut with the largest light masses of the tile
            hit = np.flatnonzero(
                prod.data >= thr - ell_max[a] - ell_max[b])
            r = np.searchsorted(prod.indptr, hit, side='right') - 1 + sa
            c = prod.indices[hit].astype(np.int64) + sb
            keep = prod.data[hit] + ell[r] + ell[c] >= thr
            if a == b:
                keep &= c >= r
            rows.append(r[keep])
            cols.append(c[keep])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    order = np.lexsort((cols, rows))
    return rows[order], cols[order]


def _min_overlaps(v: sp.csr_matrix,
                  rows: np.ndarray,
                  cols: np.ndarray,
                  budget: int = 2**23) -> np.ndarray:
    """``m = sum_k min(V_ik, V_jk)`` for pairs sorted by ``i``, exactly.

    Rows ``i`` are scattered into a dense buffer a block at a time; each
    pair then reads the entries of row ``j`` from it.
    """
    n = v.shape[0]
    out = np.zeros(len(rows), dtype=np.float64)
    if len(rows) == 0:
        return out
    counts = np.diff(v.indptr)
    span = max(1, min(n, 2**24 // max(n, 1)))  # rows per dense buffer
    dense = np.zeros((span, n), dtype=np.float64)
    lens = counts[cols]
    p0 = 0
    while p0 < len(rows):
        r0 = rows[p0]
        p1 = int(np.searchsorted(rows, r0 + span, side='left'))
        # also bound the number of gathered entries
        cum = np.cumsum(lens[p0:p1])
        p1 = p0 + max(1, int(np.searchsorted(cum, budget, side='right')))
        r1 = rows[p1 - 1] + 1
        e0, e1 = v.indptr[r0], v.indptr[r1]
        own = np.repeat(np.arange(r1 - r0), counts[r0:r1])
        dense[own, v.indices[e0:e1]] = v.data[e0:e1]
        pl = lens[p0:p1]
        total = int(pl.sum())
        offs = np.cumsum(pl) - pl
        ent = np.repeat(v.indptr[cols[p0:p1]] - offs, pl) + np.arange(total)
        mins = np.minimum(
            dense[np.repeat(rows[p0:p1] - r0, pl), v.indices[ent]],
            v.data[ent])
        nonempty = pl > 0
        out[p0:p1][nonempty] = np.add.reduceat(mins, offs[nonempty])
        dense[own, v.indices[e0:e1]] = 0.0
        p0 = p1
    return out


def k_reciprocal_jaccard(features: ArrayLike,
                         k1: int = 30,
                         k2: int = 6,
                         max_distance: Optional[float] = None,
                         chunk_size: int = 4096,
                         progress: bool = False) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distance matrix.

    Equal (up to float rounding) to the dense ``compute_jaccard_distance`` of
    SpCL / DICL on the stored entries; every pair not stored has distance 1.
    The diagonal is always stored (distance 0), and zero distances are kept
    as explicit entries (as scikit-learn's DBSCAN requires).

    Only the pairs within ``max_distance`` are computed: a sparse upper bound
    (Bhattacharyya coefficient of the query-expanded weights) selects the
    candidates, whose exact distance is then computed. Without
    ``max_distance`` every pair that shares a neighbour is stored, which for
    tens of thousands of points is a large fraction of all N^2 pairs: give a
    ``max_distance`` (the largest DBSCAN eps) there.

    Args:
        features (np.ndarray | torch.Tensor): (N, D) features (normalised
            here).
        k1 (int): k of the k-reciprocal sets. Defaults to 30.
        k2 (int): Neighbours of the local query expansion. Defaults to 6.
        max_distance (float, optional): Keep only the pairs at most this
            far (a DBSCAN with ``eps <= max_distance`` gives the same labels
            as with the full matrix). Defaults to None (every pair that
            shares a neighbour).
        chunk_size (int): Rows per block of the neighbour search.
            Defaults to 4096.
        progress (bool): Show a progress bar (one step per row block of
            the neighbour search, then one per later stage). Defaults to
            False.

    Returns:
        scipy.sparse.csr_matrix: (N, N) float64 distances in [0, 1),
        symmetric, sorted indices.
    """
    if k1 < 1 or k2 < 1:
        raise ValueError(f'k1 and k2 must be >= 1, got {k1}, {k2}')
    f64 = normalize_features(features)
    n = f64.shape[0]
    if n == 0:
        return sp.csr_matrix((0, 0), dtype=np.float64)
    kf = min(k1, n)  # the reference's k1 faiss ranks, self included
    kh = min(int(np.around(k1 / 2)) + 1, kf)
    kq = min(k2, kf)
    bar = ProgressBar(-(-n // chunk_size) + 3) if progress else None
    rank = ranked_knn(f64, kf, (1, kq, kh, kf), chunk_size, progress=bar)
    sets = _expanded_sets(rank, kf, kh)
    v = _softmax_weights(f64, sets)
    del sets
    if k2 != 1:
        v = _query_expansion(v, rank, kq)
    del rank
    if bar is not None:
        bar.update()
    # dist = 1 - m / (2 - m) <= max_distance  <=>  m >= 2 (1 - d) / (2 - d)
    if max_distance is None or max_distance >= 1:
        min_overlap = 0.0
    else:
        min_overlap = 2 * (1 - max_distance) / (2 - max_distance)
    rows, cols = _overlapping_pairs(v, min_overlap)
    if bar is not None:
        bar.update()
    m = _min_overlaps(v, rows, cols)
    if bar is not None:
        bar.update()
        bar.file.write('\n')
    dist = 1.0 - m / (2.0 - m)
    np.maximum(dist, 0.0, out=dist)
    dist[rows == cols] = 0.0  # 1 - m_ii / (2 - m_ii) with m_ii = sum V_i = 1
    keep = (m > 0) | (rows == cols)
    if max_distance is not None:
        keep &= (dist <= max_distance) | (rows == cols)
    rows, cols, dist = rows[keep], cols[keep], dist[keep]
    off = rows != cols
    diag = np.arange(n)  # always stored (zeros add up to zero)
    full = sp.coo_matrix(
        (np.concatenate([dist, dist[off], np.zeros(n)]),
         (np.concatenate([rows, cols[off], diag
                          ]), np.concatenate([cols, rows[off], diag]))),
        shape=(n, n)).tocsr()
    full.sum_duplicates()
    full.sort_indices()
    return full

# Copyright (c) OpenMMLab. All rights reserved.
"""Exact k nearest neighbours by cosine similarity, never N x N.

The neighbour search of the k-reciprocal Jaccard distance
(:mod:`.jaccard`): float32 matrix products over blocks (each block pair
computed once, for both of its row blocks), keeping the entries above a
running lower bound of each row's k-th similarity; float64 re-ranking
wherever float32 values are too close to decide.

Conventions: features are L2-normalised (here in float64). The neighbour
order is the cosine similarity, i.e. the squared-Euclidean order of the
normalised features that faiss computes in the reference. The point itself
comes first and ties are broken by the lower index (the reference leaves
both to faiss); duplicate points get bit-identical similarities.

``tools/analysis_tools/benchmark_clustering.py --knn-only`` times this
engine against scikit-learn's brute-force ``NearestNeighbors`` at the size
of the CUHK-SYSU memory: it is kept because it is clearly faster there, and
its order is exact (scikit-learn orders near-ties by rounding).
"""
import math
import warnings
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.utils import ProgressBar

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = ['exact_knn', 'normalize_features', 'ranked_knn', 'sampled_dots']

# A float32 dot product of unit vectors of dimension D (inputs rounded to
# float32 included) is within (D + 2) * 2^-24 of the exact one (a worst-case
# bound; typical errors are far smaller). Candidates within twice that of
# a row's k-th float32 similarity are kept, so that the exact float64 order
# can always be recovered from them.
_TOL = 1e-4


def _tolerance(dim: int) -> float:
    return max(_TOL, 2 * (dim + 2) * 2.0**-24)


def normalize_features(features: ArrayLike) -> torch.Tensor:
    """L2-normalised float64 copy of an (N, D) array or tensor."""
    if isinstance(features, np.ndarray):
        features = torch.from_numpy(features)
    features = features.detach().to('cpu', torch.float64)
    if features.dim() != 2:
        raise ValueError(
            f'features must be (N, D), got {tuple(features.shape)}')
    norms = features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return features / norms


def _canonical_order(sims: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Order of each row by descending similarity, then ascending index."""
    return np.lexsort((index, -sims), axis=-1)


def _exact_rows(f64: torch.Tensor, rows: np.ndarray, k: int) -> np.ndarray:
    """Canonical top-k of some rows, from their full float64 similarities.

    Similarities are row-by-row products (not a matrix product), so that
    duplicate points get bit-identical values, as in the float64 re-ranking;
    rows with identical features share one similarity row.
    """
    x = f64.numpy()
    uniq, inv = np.unique(x[rows], axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    out = np.empty((len(rows), k), dtype=np.int64)
    for u, vec in enumerate(uniq):
        sims = (x * vec).sum(axis=1)
        kth = np.partition(sims, len(sims) - k)[len(sims) - k]
        cand = np.flatnonzero(sims >= kth)
        ranked = cand[_canonical_order(sims[cand], cand)]
        for r in np.flatnonzero(inv == u):
            others = ranked[ranked != rows[r]][:k - 1]
            out[r] = np.concatenate([[rows[r]], others])
    return out


class _Candidates:
    """Best float32 candidates of a block of rows (fixed width, -inf padded).

    Also keeps, per row, the largest value ever dropped, so that a row whose
    near-tie group did not fit can be detected and recomputed. Plain numpy:
    the arrays are small and single-threaded code is fastest for them.
    """

    def __init__(self, rows: int, width: int, k: int) -> None:
        self.k = k
        self.vals = np.full((rows, width), -np.inf, dtype=np.float32)
        self.idx = np.zeros((rows, width), dtype=np.int64)
        self.dropped = np.full(rows, -np.inf, dtype=np.float32)

    def add(self, row: np.ndarray, col: np.ndarray, val: np.ndarray) -> None:
        """Merge entries given in row-major order."""
        if len(row) == 0:
            return
        n_rows, width = self.vals.shape
        counts = np.bincount(row, minlength=n_rows)
        pos = np.arange(len(row)) - (np.cumsum(counts) - counts)[row]
        pad_v = np.full((n_rows, counts.max()), -np.inf, dtype=np.float32)
        pad_i = np.zeros(pad_v.shape, dtype=np.int64)
        pad_v[row, pos] = val
        pad_i[row, pos] = col
        vals = np.concatenate([self.vals, pad_v], axis=1)
        idx = np.concatenate([self.idx, pad_i], axis=1)
        part = np.argpartition(-vals, width, axis=1)
        np.maximum(
            self.dropped,
            np.take_along_axis(vals, part[:, width:width + 1], 1)[:, 0],
            out=self.dropped)
        self.vals = np.take_along_axis(vals, part[:, :width], 1)
        self.idx = np.take_along_axis(idx, part[:, :width], 1)

    def kth(self) -> np.ndarray:
        """Each row's k-th largest candidate value."""
        width = self.vals.shape[1]
        pos = width - self.k
        return np.partition(self.vals, pos, axis=1)[:, pos]


def _kth_lower_bound(f32: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """A lower bound of each row's k-th largest similarity (self = +inf):
    its k-th largest over a fixed subset of about 1024 columns."""
    n = f32.shape[0]
    cols = torch.arange(0, n, max(1, n // 1024))
    if len(cols) < k:
        cols = torch.arange(n)
    out = torch.empty(n)
    for s in range(0, n, chunk):
        sims = f32[s:s + chunk] @ f32[cols].T
        rows = torch.arange(s, min(n, s + chunk))
        sims[rows[:, None] == cols[None, :]] = math.inf
        out[s:s + chunk] = sims.topk(k, dim=1).values[:, -1]
    return out


def exact_knn(features: ArrayLike,
              k: int,
              chunk_size: int = 4096) -> np.ndarray:
    """Exact k nearest neighbours by cosine similarity, in memory-bounded
    chunks (never N x N).

    The result equals sorting each row of the float64 similarity matrix
    with the point itself first and ties broken by the lower index.

    Args:
        features (np.ndarray | torch.Tensor): (N, D) features; normalised
            here.
        k (int): Neighbours per point, the point itself included
            (``1 <= k <= N``).
        chunk_size (int): Rows per block. Defaults to 4096.

    Returns:
        np.ndarray: (N, k) int64 neighbour indices; column 0 is the point.
    """
    return ranked_knn(
        normalize_features(features), k, range(1, k + 1), chunk_size)


@torch.no_grad()
def ranked_knn(f64: torch.Tensor,
               k: int,
               exact_at: Sequence[int],
               chunk_size: int = 4096,
               margin: int = 16,
               progress: Optional[ProgressBar] = None) -> np.ndarray:
    """k nearest neighbours whose first ``b`` columns, for each ``b`` in
    ``exact_at``, are exactly the ``b`` nearest (canonical ties, as
    :func:`exact_knn`); between two such cuts the indices are sorted.

    Candidates come from float32 matrix products over blocks (each block
    pair is computed once and serves both of its row blocks; entries below
    a running lower bound of the row's k-th similarity are skipped). A cut
    is accepted from the float32 values when they leave a gap larger than
    their error bound there; the other rows are re-ranked with float64
    similarities (or fully recomputed when the near-ties did not fit).

    Args:
        f64 (torch.Tensor): (N, D) float64 features, already normalised
            (:func:`normalize_features`).
        k (int): Neighbours per point, the point itself included.
        exact_at (Sequence[int]): Cuts ``b`` (``1 <= b <= k``; ``k`` is
            always one) whose first ``b`` neighbours must be exact.
        chunk_size (int): Rows per block. Defaults to 4096.
        margin (int): Candidates kept per row beyond ``k``. Defaults to 16.
        progress (ProgressBar, optional): Updated once per row block.
            Defaults to None.

    Returns:
        np.ndarray: (N, k) int64 neighbour indices; column 0 is the point.
    """
    n = f64.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f'k must be in [1, N={n}], got {k}')
    f32 = f64.float()
    tol = _tolerance(f64.shape[1])
    width = min(n, k + margin)
    starts = list(range(0, n, chunk_size))
    cands = [_Candidates(min(chunk_size, n - s), width, k) for s in starts]
    # per-row lower bound of the k-th similarity, minus the tolerance
    thr = (_kth_lower_bound(f32, k, chunk_size) - tol).numpy()

    def add(a: int, row: np.ndarray, col: np.ndarray, val: np.ndarray) -> None:
        cands[a].add(row, col, val)
        block = thr[starts[a]:starts[a] + chunk_size]
        np.maximum(block, cands[a].kth() - tol, out=block)

    for a, sa in enumerate(starts):
        fa = f32[sa:sa + chunk_size]
        for b in range(a, len(starts)):
            sb = starts[b]
            sims = (fa @ f32[sb:sb + chunk_size].T).numpy()
            if a == b:
                np.fill_diagonal(sims, np.inf)
            flat = sims.reshape(-1)
            na, nb = sims.shape
            hit = np.flatnonzero(sims >= thr[sa:sa + na, None])
            add(a, hit // nb, hit % nb + sb, flat[hit])
            if a != b:
                hit = np.flatnonzero(sims >= thr[None, sb:sb + nb])
                hit = hit[np.argsort(hit % nb, kind='stable')]
                add(b, hit % nb, hit // nb + sa, flat[hit])
            del sims, flat
        if progress is not None:
            progress.update()

    cuts = sorted({c for c in exact_at if 1 <= c <= k} | {k})
    out = np.empty((n, k), dtype=np.int64)
    for a, sa in enumerate(starts):
        cand, cands[a] = cands[a], None
        rows = np.arange(sa, sa + len(cand.vals))
        low = cand.kth() - tol
        vals = np.where(cand.vals >= low[:, None], cand.vals, -np.inf)
        order = _canonical_order(vals, cand.idx)
        vals = np.take_along_axis(vals, order, 1)
        idx = np.take_along_axis(cand.idx, order, 1)
        # near-ties that did not fit in the candidates: recompute the row
        full = cand.dropped >= low
        # a cut with float32 values closer than the tolerance: re-rank
        close = np.zeros(len(rows), dtype=bool)
        for c in cuts:
            if c < width:
                close |= vals[:, c] >= vals[:, c - 1] - tol
        close &= ~full
        if close.any():
            sub = rows[close]
            perm = np.argsort(idx[close], axis=1)  # sorted columns for sddmm
            sub_idx = np.take_along_axis(idx[close], perm, 1)
            sub_vals = np.take_along_axis(vals[close], perm, 1)
            sims = sampled_dots(f64[torch.from_numpy(sub)], f64,
                                 np.arange(0, sub_idx.size + 1, width),
                                 sub_idx.reshape(-1)).reshape(sub_idx.shape)
            sims[sub_idx == sub[:, None]] = np.inf
            sims[sub_vals == -np.inf] = -np.inf
            idx[close] = np.take_along_axis(sub_idx,
                                            _canonical_order(sims, sub_idx), 1)
        if full.any():
            idx[full, :k] = _exact_rows(f64, rows[full], k)
        top = idx[:, :k]
        # canonical order between the cuts: by index
        prev = 0
        for c in cuts:
            top[:, prev:c].sort(axis=1)
            prev = c
        out[sa:sa + len(rows)] = top
    return out


def _torch_csr(indptr: np.ndarray, indices: np.ndarray, values: torch.Tensor,
               shape: Tuple[int, int]) -> torch.Tensor:
    """A torch sparse CSR tensor (int64 indices), without beta notices."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(np.asarray(indptr, dtype=np.int64)),
            torch.from_numpy(np.asarray(indices, dtype=np.int64)),
            values,
            shape,
            check_invariants=False)


def sampled_dots(left: torch.Tensor, right: torch.Tensor, indptr: np.ndarray,
                 indices: np.ndarray) -> np.ndarray:
    """``left_i . right_j`` for the entries (i, j) of a CSR sparsity pattern
    (sampled dense-dense product, no gathered copies)."""
    pattern = _torch_csr(indptr, indices,
                         torch.zeros(len(indices), dtype=left.dtype),
                         (left.shape[0], right.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # beta-state notices
        out = torch.sparse.sampled_addmm(pattern, left, right.T, beta=0.0)
    return out.values().numpy()

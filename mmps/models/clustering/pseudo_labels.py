# Copyright (c) OpenMMLab. All rights reserved.
"""Pseudo labels from an instance memory (SpCL / DICL clustering).

``generate_pseudo_labels`` is DICL's ``label_generator_dbscan_context``
(clustering ``dbscan_context`` with ``use_outliers=True``) on a sparse
k-reciprocal Jaccard matrix: three DBSCANs (tight / normal / loose eps),
DBSCAN outliers as singleton clusters, the scene constraint applied to each
of the three labelings, then SpCL's reliability criterion on the normal one.
Everything is vectorised (no N x N array) and deterministic.
"""
import time
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN
from sklearn.metrics import (adjusted_rand_score, normalized_mutual_info_score)

from mmps.utils import to_numpy
from .jaccard import k_reciprocal_jaccard

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = [
    'dbscan_labels', 'apply_scene_constraint', 'reliability_refine',
    'generate_pseudo_labels', 'cluster_quality'
]


def _check_finite_rows(features: ArrayLike) -> None:
    """Raise a clear error for features with a NaN or an Inf (scikit-learn
    and the Jaccard distance would fail obscurely or silently)."""
    if not isinstance(features, torch.Tensor):
        features = np.asarray(features)
    if features.ndim != 2:
        return  # the Jaccard distance reports the shape
    if isinstance(features, torch.Tensor):
        finite = torch.isfinite(features.detach()).all(1).cpu().numpy()
    else:
        finite = np.isfinite(features).all(1)
    bad = np.flatnonzero(~finite)
    if len(bad):
        raise ValueError(f'features has {len(bad)} row(s) with NaN or Inf '
                         f'values (rows {bad[:5].tolist()}...): the memory '
                         'holds diverged features')


def _singletons(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Give each sample of ``mask`` its own new id (after the largest one),
    in index order."""
    out = labels.copy()
    count = int(mask.sum())
    if count:
        start = int(labels.max()) + 1 if len(labels) else 0
        out[mask] = np.arange(start, start + count)
    return out


def dbscan_labels(dist: Union[sp.spmatrix, np.ndarray], eps: float,
                  min_samples: int) -> np.ndarray:
    """DBSCAN on a precomputed distance matrix, outliers as singletons.

    With a sparse matrix, scikit-learn only considers the stored entries as
    possible neighbours: that is exact here as long as ``eps < 1``, since
    the Jaccard distance of every pair not stored is 1. Stored zeros count
    (distance 0).

    Args:
        dist (scipy.sparse matrix | np.ndarray): (N, N) distances.
        eps (float): DBSCAN radius (``< 1`` for a sparse matrix).
        min_samples (int): DBSCAN core-point size, the point included.

    Returns:
        np.ndarray: (N, ) int64 labels: DBSCAN's clusters ``0..K-1`` then
        one new id per outlier, ``K, K+1, ...`` in index order.
    """
    return _dbscan(dist, eps, min_samples)[0]


def _dbscan(dist: Union[sp.spmatrix, np.ndarray], eps: float,
            min_samples: int) -> Tuple[np.ndarray, int]:
    """``dbscan_labels`` and the number of DBSCAN clusters."""
    n = dist.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    if sp.issparse(dist):
        if eps >= 1:
            raise ValueError('a sparse Jaccard matrix leaves pairs at '
                             f'distance 1 out: eps must be < 1, got {eps}')
        dist = sp.csr_matrix(dist)
    labels = DBSCAN(
        eps=eps, min_samples=min_samples,
        metric='precomputed').fit_predict(dist).astype(np.int64)
    outliers = labels < 0
    num = int(labels.max()) + 1 if (~outliers).any() else 0
    labels[outliers] = np.arange(num, num + int(outliers.sum()))
    return labels, num


def apply_scene_constraint(labels: ArrayLike, features: ArrayLike,
                           image_ids: ArrayLike) -> np.ndarray:
    """One box per image per cluster.

    Among several boxes of one image in one cluster, the one whose feature
    is closest (cosine) to the cluster centroid (mean of the cluster's
    normalised features) keeps the label, ties to the lower index; the
    others become singleton clusters (DICL's ``process_label_with_context``,
    which uses the un-normalised mean: same choice).

    Args:
        labels (np.ndarray | torch.Tensor): (N, ) non-negative labels.
        features (np.ndarray | torch.Tensor): (N, D) features.
        image_ids (np.ndarray | torch.Tensor): (N, ) image of each box.

    Returns:
        np.ndarray: (N, ) int64 labels; new ids follow the largest one, in
        index order.
    """
    labels = to_numpy(labels, np.int64)
    n = len(labels)
    if n == 0:
        return labels.copy()
    feats = to_numpy(features, np.float64)
    feats = feats / np.maximum(
        np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    images = np.unique(to_numpy(image_ids), return_inverse=True)[1]
    images = images.reshape(-1)
    _, inv = np.unique(labels, return_inverse=True)
    member = sp.csr_matrix((np.ones(n), (inv, np.arange(n))),
                           shape=(inv.max() + 1, n))
    centers = member @ feats
    centers /= np.maximum(
        np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    sim = np.einsum('nd,nd->n', feats, centers[inv])
    order = np.lexsort((np.arange(n), -sim, images, inv))
    same = (inv[order][1:] == inv[order][:-1]) & \
        (images[order][1:] == images[order][:-1])
    demote = np.zeros(n, dtype=bool)
    demote[order[1:][same]] = True
    return _singletons(labels, demote)


def _group_sizes(*labelings: np.ndarray) -> np.ndarray:
    """Per sample, the number of samples with the same labels in all the
    given labelings."""
    key = np.zeros(len(labelings[0]), dtype=np.int64)
    for labels in labelings:
        inv = np.unique(labels, return_inverse=True)[1].reshape(-1)
        key = key * (int(inv.max()) + 1) + inv
        key = np.unique(key, return_inverse=True)[1].reshape(-1)
    return np.bincount(key)[key]


def _independence(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - IoU`` of each sample's clusters in ``a`` and ``b`` (float32, as
    in the reference)."""
    inter = _group_sizes(a, b).astype(np.float32)
    union = (_group_sizes(a) + _group_sizes(b)).astype(np.float32) - inter
    return np.float32(1) - inter / union


def reliability_refine(
        labels_normal: ArrayLike,
        labels_tight: ArrayLike,
        labels_loose: ArrayLike,
        threshold: Optional[float] = None,
        percentile: float = 90) -> Tuple[np.ndarray, Optional[float]]:
    """SpCL's clustering reliability criterion (DICL's label generator).

    Per sample, ``R_comp = 1 - IoU(normal cluster, tight cluster)`` and
    ``R_indep = 1 - IoU(normal cluster, loose cluster)`` (clusters as sets
    of indices). Per normal cluster, both are reduced with ``min`` over its
    members. A sample is unreliable when its cluster's ``R_indep`` exceeds
    the threshold, or when its own ``R_comp`` exceeds its cluster's
    minimum. Unreliable samples become singletons, except that a cluster
    always keeps one member (with all members unreliable, the last one by
    index keeps the label, as the reference's sequential loop does).

    Args:
        labels_normal (np.ndarray | torch.Tensor): (N, ) labels at the
            normal eps (outliers already singletons, no -1).
        labels_tight (np.ndarray | torch.Tensor): (N, ) labels at the
            smaller eps.
        labels_loose (np.ndarray | torch.Tensor): (N, ) labels at the larger
            eps.
        threshold (float, optional): ``R_indep`` threshold. None computes
            it: the ``percentile``-th value (``min(n - 1, round(n * p))``-th
            of the sorted values, as the reference) of the clusters with
            more than one member. Pass the returned one back to freeze it.
        percentile (float): See ``threshold``. Defaults to 90.

    Returns:
        tuple: (N, ) int64 labels (new ids after the largest one, in index
        order) and the threshold used (None if it had to be computed and
        no cluster has two members).
    """
    normal = to_numpy(labels_normal, np.int64)
    tight = to_numpy(labels_tight, np.int64)
    loose = to_numpy(labels_loose, np.int64)
    if not len(normal) == len(tight) == len(loose):
        raise ValueError('the three labelings must have the same length')
    n = len(normal)
    if n == 0:
        return normal.copy(), threshold
    if (normal < 0).any():
        raise ValueError('labels_normal must not contain outliers (-1)')
    r_comp = _independence(normal, tight)
    r_indep = _independence(normal, loose)
    _, inv, sizes = np.unique(normal, return_inverse=True, return_counts=True)
    num = len(sizes)
    cluster_comp = np.full(num, np.inf, dtype=np.float32)
    cluster_indep = np.full(num, np.inf, dtype=np.float32)
    np.minimum.at(cluster_comp, inv, r_comp)
    np.minimum.at(cluster_indep, inv, r_indep)
    if threshold is None:
        values = np.sort(cluster_indep[sizes > 1].astype(np.float64))
        if len(values):
            pos = min(
                len(values) - 1,
                int(np.round(len(values) * (percentile / 100))))
            threshold = float(values[pos])
    unreliable = r_comp > cluster_comp[inv]
    if threshold is not None:
        unreliable |= cluster_indep[inv].astype(np.float64) > threshold
    # a cluster whose members are all unreliable keeps its last one
    all_bad = np.bincount(inv, weights=unreliable, minlength=num) == sizes
    last = np.zeros(num, dtype=np.int64)
    np.maximum.at(last, inv, np.arange(n))
    keeper = all_bad[inv] & (np.arange(n) == last[inv])
    return _singletons(normal, unreliable & ~keeper), threshold


def generate_pseudo_labels(features: ArrayLike,
                           image_ids: Optional[ArrayLike] = None,
                           eps: Sequence[float] = (0.68, 0.70, 0.72),
                           min_samples: int = 4,
                           k1: int = 30,
                           k2: int = 6,
                           indep_threshold: Optional[float] = None,
                           scene_constraint: bool = True,
                           percentile: float = 90,
                           progress: bool = False) -> Dict[str, object]:
    """Cluster an instance memory into pseudo labels (DICL / SpCL).

    One sparse k-reciprocal Jaccard matrix (pairs beyond the largest eps
    are not kept), DBSCAN at each eps with outliers as singletons, the
    scene constraint on each labeling, then (with three eps) the
    reliability criterion on the normal labeling. Labels are renumbered
    ``0..C-1`` keeping the order of the ids (DBSCAN clusters first).

    Args:
        features (np.ndarray | torch.Tensor): (N, D) memory features
            (normalised here).
        image_ids (np.ndarray | torch.Tensor, optional): (N, ) image of
            each box; required by the scene constraint.
        eps (Sequence[float]): One eps (plain DBSCAN) or three (tight,
            normal, loose; sorted here). Each must be < 1.
            Defaults to (0.68, 0.70, 0.72).
        min_samples (int): DBSCAN ``min_samples``. Defaults to 4.
        k1 (int): Jaccard k-reciprocal k. Defaults to 30.
        k2 (int): Jaccard query-expansion k. Defaults to 6.
        indep_threshold (float, optional): Frozen ``R_indep`` threshold;
            None computes it. Defaults to None.
        scene_constraint (bool): Apply the one-box-per-image-per-cluster
            rule. Defaults to True.
        percentile (float): Percentile of the computed threshold.
            Defaults to 90.
        progress (bool): Show a progress bar over the Jaccard distances
            (most of the time). Defaults to False.

    Returns:
        dict: ``labels`` ((N, ) int64), ``indep_threshold`` (to pass back
        at the next clustering), ``num_clusters`` (C, singletons
        included), ``num_singletons``, ``num_multi_clusters`` (clusters of
        at least two boxes), ``num_clustered`` (boxes in those),
        ``num_outliers`` (DBSCAN outliers at the normal eps),
        ``num_scene_split``, ``num_unreliable``, ``jaccard_nnz``,
        ``time_jaccard``, ``time_dbscan``, ``time_total`` (seconds).

    Raises:
        ValueError: A feature holds a NaN or an Inf.
    """
    start = time.perf_counter()
    eps = sorted(float(e) for e in eps)
    if len(eps) not in (1, 3):
        raise ValueError(f'eps must hold 1 or 3 values, got {eps}')
    if scene_constraint and image_ids is None:
        raise ValueError('the scene constraint needs image_ids')
    _check_finite_rows(features)
    feats = features
    dist = k_reciprocal_jaccard(
        feats, k1=k1, k2=k2, max_distance=eps[-1], progress=progress)
    t_jaccard = time.perf_counter() - start
    results = [_dbscan(dist, e, min_samples) for e in eps]
    t_dbscan = time.perf_counter() - start - t_jaccard
    labelings = [labels for labels, _ in results]
    normal_raw, num_dbscan = results[len(eps) // 2]
    num_outliers = int((normal_raw >= num_dbscan).sum())
    if scene_constraint:
        labelings = [
            apply_scene_constraint(lab, feats, image_ids) for lab in labelings
        ]
    normal = labelings[len(eps) // 2]
    num_scene_split = int((normal != normal_raw).sum())
    if len(eps) == 3:
        labels, indep_threshold = reliability_refine(normal, labelings[0],
                                                     labelings[2],
                                                     indep_threshold,
                                                     percentile)
    else:
        labels = normal
    num_unreliable = int((labels != normal).sum())
    labels = np.unique(labels, return_inverse=True)[1].reshape(-1)
    labels = labels.astype(np.int64)
    sizes = np.bincount(labels)
    return dict(
        labels=labels,
        indep_threshold=indep_threshold,
        num_clusters=len(sizes),
        num_singletons=int((sizes == 1).sum()),
        num_multi_clusters=int((sizes > 1).sum()),
        num_clustered=int(sizes[sizes > 1].sum()),
        num_outliers=num_outliers,
        num_scene_split=num_scene_split,
        num_unreliable=num_unreliable,
        jaccard_nnz=int(dist.nnz),
        time_jaccard=t_jaccard,
        time_dbscan=t_dbscan,
        time_total=time.perf_counter() - start)


def cluster_quality(labels: ArrayLike,
                    person_ids: ArrayLike) -> Dict[str, float]:
    """Agreement of pseudo labels with the annotated identities.

    Args:
        labels (np.ndarray | torch.Tensor): (N, ) pseudo labels.
        person_ids (np.ndarray | torch.Tensor): (N, ) identities, negative
            for unlabeled boxes (left out).

    Returns:
        dict: ``ari`` (adjusted Rand index), ``nmi`` (normalised mutual
        information) and ``num_labeled`` (boxes compared).
    """
    labels = to_numpy(labels).reshape(-1)
    person_ids = to_numpy(person_ids).reshape(-1)
    keep = person_ids >= 0
    if not keep.any():
        return dict(ari=float('nan'), nmi=float('nan'), num_labeled=0)
    return dict(
        ari=float(adjusted_rand_score(person_ids[keep], labels[keep])),
        nmi=float(
            normalized_mutual_info_score(person_ids[keep], labels[keep])),
        num_labeled=int(keep.sum()))

# Copyright (c) OpenMMLab. All rights reserved.
"""Time the pseudo-label clustering at the size of the CUHK-SYSU memory.

Builds synthetic memory features: ``--ids`` identity prototypes on the unit
sphere, a few boxes per identity (Poisson), each ``normalize(prototype +
noise)``, spread over ``--images`` random images; then runs
:func:`mmps.models.clustering.generate_pseudo_labels` with DICL's settings
(k1=30, k2=6, eps 0.68 / 0.70 / 0.72, min_samples 4, scene constraint) and
prints one ``name: value`` line per figure. ``peak_rss_gb`` is the peak
resident memory of the process (``ru_maxrss``; interpreter, torch and the
features included); ``baseline_rss_gb`` is the same figure just before the
clustering, so the clustering itself took at most the difference.

Then (alone with ``--knn-only``, skipped with ``--no-knn``) the neighbour
search of the Jaccard distance, :func:`mmps.models.clustering.exact_knn`
(the ``k1`` nearest by cosine similarity, the point itself included), is
timed against libraries on the same features: scikit-learn's
``NearestNeighbors(algorithm='brute')`` with ``metric='euclidean'`` on the
L2-normalised features (the same order) and with ``metric='cosine'``, and
scipy's ``cKDTree`` (exact; timed on ``--kdtree-queries`` queries and
extrapolated to all, as a k-d tree in 256 dimensions visits most leaves).
``knn_<lib>_ratio`` is the library's time over the hand-written one's;
``knn_<lib>_sets_differ`` counts the points whose neighbour sets differ,
``..._beyond_ties`` those where a differing neighbour is not within
``1e-6`` (float32 rounding) of the k-th cosine similarity.

Example::

    python tools/analysis_tools/benchmark_clustering.py --num 55272
    python tools/analysis_tools/benchmark_clustering.py --knn-only
"""
import argparse
import resource
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmps.utils import report_figures

K1 = 30  # DICL's k1 (k-reciprocal sets)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark the sparse Jaccard + DBSCAN pseudo labels')
    parser.add_argument(
        '--num',
        type=int,
        default=55272,
        help='memory slots (default: 55272, CUHK-SYSU)')
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument(
        '--ids', type=int, default=None, help='identities (default: num / 7)')
    parser.add_argument(
        '--images',
        type=int,
        default=None,
        help='images (default: num / 4.93, as CUHK-SYSU)')
    parser.add_argument(
        '--noise',
        type=float,
        default=1.75,
        help='noise norm relative to the prototypes')
    parser.add_argument('--min-samples', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    knn = parser.add_mutually_exclusive_group()
    knn.add_argument(
        '--knn-only',
        action='store_true',
        help='only compare the kNN engine with the libraries')
    knn.add_argument(
        '--no-knn', action='store_true', help='skip the kNN comparison')
    parser.add_argument(
        '--kdtree-queries',
        type=int,
        default=512,
        help='queries timed for cKDTree, extrapolated (0: skip it)')
    parser.add_argument('--json', help='also write the figures to this file')
    return parser.parse_args(argv)


def make_features(num: int, dim: int, ids: int, images: int, noise: float,
                  seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic memory: features (float32), image ids, identities."""
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((ids, dim)).astype(np.float32)
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    # a few boxes per identity, every identity at least once
    person = np.concatenate(
        [np.arange(ids),
         rng.integers(0, ids, max(0, num - ids))])[:num]
    person = np.sort(person)
    feats = rng.standard_normal((num, dim)).astype(np.float32)
    feats *= noise / np.sqrt(dim)
    feats += protos[person]
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    order = rng.permutation(num)
    image_ids = rng.integers(0, images, num)
    return feats[order], image_ids, person[order]


def rss_gb() -> float:
    """Peak resident set size of this process so far (GB)."""
    scale = 1 if sys.platform == 'darwin' else 1024  # bytes vs KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def _neighbour_agreement(ref: np.ndarray, other: np.ndarray,
                         feats: np.ndarray, tie_tol: float) -> Tuple[int, int]:
    """Points whose neighbour sets differ, and those among them where a
    neighbour of one set only is not a near-tie of the k-th one."""
    differ = beyond = 0
    for i, (a, b) in enumerate(zip(ref, other)):
        only = np.setxor1d(a, b)
        if len(only) == 0:
            continue
        differ += 1
        sims = feats[only] @ feats[i]
        if np.abs(sims - feats[a[-1]] @ feats[i]).max() > tie_tol:
            beyond += 1
    return differ, beyond


def compare_knn(feats: np.ndarray, k: int,
                kdtree_queries: int) -> Dict[str, float]:
    """Time :func:`exact_knn` against library kNN searches (see the module
    docstring) and compare their neighbour sets."""
    from scipy.spatial import cKDTree
    from sklearn.neighbors import NearestNeighbors

    from mmps.models.clustering import exact_knn

    num = len(feats)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    unit64 = feats.astype(np.float64)
    unit64 /= np.linalg.norm(unit64, axis=1, keepdims=True)
    start = time.perf_counter()
    ref = exact_knn(feats, k)
    hand = time.perf_counter() - start
    figures = dict(knn_k=k, knn_hand_s=round(hand, 2))

    def report(name: str, seconds: float, rank: np.ndarray) -> None:
        differ, beyond = _neighbour_agreement(ref[:len(rank)], rank, unit64,
                                              1e-6)
        figures.update({
            f'knn_{name}_s': round(seconds, 2),
            f'knn_{name}_ratio': round(seconds / hand, 3),
            f'knn_{name}_sets_differ': differ,
            f'knn_{name}_sets_differ_beyond_ties': beyond
        })

    for metric, x in (('euclidean', unit), ('cosine', feats)):
        start = time.perf_counter()
        search = NearestNeighbors(
            n_neighbors=k, algorithm='brute', metric=metric).fit(x)
        rank = search.kneighbors(x, return_distance=False)
        report(f'sklearn_{metric}', time.perf_counter() - start, rank)
    if kdtree_queries > 0:
        queries = min(num, kdtree_queries)
        start = time.perf_counter()
        tree = cKDTree(unit)
        build = time.perf_counter() - start
        start = time.perf_counter()
        rank = tree.query(unit[:queries], k=k, workers=-1)[1]
        query = time.perf_counter() - start
        report('ckdtree_extrapolated', build + query * num / queries,
               rank.reshape(queries, k))
    return figures


def cluster(args: argparse.Namespace, feats: np.ndarray,
            image_ids: np.ndarray, person: np.ndarray) -> Dict[str, float]:
    """Run the pseudo-label clustering once; its figures."""
    import torch

    from mmps.models.clustering import cluster_quality, generate_pseudo_labels

    baseline = rss_gb()
    start = time.perf_counter()
    out = generate_pseudo_labels(
        torch.from_numpy(feats),
        image_ids,
        eps=(0.68, 0.70, 0.72),
        min_samples=args.min_samples,
        k1=K1,
        k2=6)
    total = time.perf_counter() - start
    peak = rss_gb()
    quality = cluster_quality(out['labels'], person)
    return dict(
        jaccard_s=round(out['time_jaccard'], 2),
        dbscan_s=round(out['time_dbscan'], 2),
        total_s=round(total, 2),
        baseline_rss_gb=round(baseline, 3),
        peak_rss_gb=round(peak, 3),
        jaccard_nnz=out['jaccard_nnz'],
        num_clusters=out['num_clusters'],
        num_multi_clusters=out['num_multi_clusters'],
        num_singletons=out['num_singletons'],
        num_outliers=out['num_outliers'],
        num_scene_split=out['num_scene_split'],
        num_unreliable=out['num_unreliable'],
        indep_threshold=round(float(out['indep_threshold'] or 0), 4),
        ari=round(quality['ari'], 4),
        nmi=round(quality['nmi'], 4))


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    import torch

    ids = args.ids or max(1, round(args.num / 7))
    images = args.images or max(1, round(args.num / 4.93))
    feats, image_ids, person = make_features(args.num, args.dim, ids, images,
                                             args.noise, args.seed)
    figures = dict(
        num=args.num,
        dim=args.dim,
        identities=ids,
        threads=torch.get_num_threads())
    if not args.knn_only:
        figures.update(cluster(args, feats, image_ids, person))
    if not args.no_knn:
        # the neighbours of the Jaccard distance: k1, the point included
        figures.update(
            compare_knn(feats, min(K1, args.num), args.kdtree_queries))
    report_figures(figures, args.json)
    return figures


if __name__ == '__main__':
    main()

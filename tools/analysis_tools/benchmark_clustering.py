# Copyright (c) OpenMMLab. All rights reserved.
"""Time the pseudo-label clustering at the size of the CUHK-SYSU memory.

Builds synthetic memory features: ``--ids`` identity prototypes on the unit
sphere, a few boxes per identity (Poisson), each ``normalize(prototype +
noise)``, spread over ``--images`` random images; then runs
:func:`mmps.models.utils.generate_pseudo_labels` with DICL's settings
(k1=30, k2=6, eps 0.68 / 0.70 / 0.72, min_samples 4, scene constraint) and
prints one ``name: value`` line per figure. ``peak_rss_gb`` is the peak
resident memory of the process (``ru_maxrss``; interpreter, torch and the
features included); ``baseline_rss_gb`` is the same figure just before the
clustering, so the clustering itself took at most the difference.

Example::

    python tools/analysis_tools/benchmark_clustering.py --num 55272
"""
import argparse
import resource
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmps.utils import report_figures


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


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    import torch

    from mmps.models.utils import cluster_quality, generate_pseudo_labels

    ids = args.ids or max(1, round(args.num / 7))
    images = args.images or max(1, round(args.num / 4.93))
    feats, image_ids, person = make_features(args.num, args.dim, ids, images,
                                             args.noise, args.seed)
    baseline = rss_gb()
    start = time.perf_counter()
    out = generate_pseudo_labels(
        torch.from_numpy(feats),
        image_ids,
        eps=(0.68, 0.70, 0.72),
        min_samples=args.min_samples,
        k1=30,
        k2=6)
    total = time.perf_counter() - start
    peak = rss_gb()
    quality = cluster_quality(out['labels'], person)
    figures = dict(
        num=args.num,
        dim=args.dim,
        identities=ids,
        threads=torch.get_num_threads(),
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
    report_figures(figures, args.json)
    return figures


if __name__ == '__main__':
    main()

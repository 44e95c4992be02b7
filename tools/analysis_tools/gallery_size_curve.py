# Copyright (c) OpenMMLab. All rights reserved.
"""Person search mAP and top-1 against the CUHK-SYSU gallery size.

Evaluates one or several results files (``tools/test.py --out``) at the
gallery sizes of the protocol files (50, 100, 500, 1000, 2000, 4000) and on
the full set, prints one ``name: value`` line per size and metric
(``<label>_g<size>_mAP``, ``..._top1``; ``g-1`` is the full set) and draws
mAP and top-1 against the gallery size, one line per results file.

Example::

    python tools/analysis_tools/gallery_size_curve.py \\
        --data-root data/CUHK-SYSU \\
        --results work_dirs/a/results.npz work_dirs/b/results.npz \\
        --labels a b --out-png work_dirs/gallery_size.png

Imports numpy and scipy only (matplotlib for the PNG, an optional
dependency); the protocol files are read by ``mmps.datasets.native``
(cached).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

SIZES = (50, 100, 500, 1000, 2000, 4000, -1)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='CUHK-SYSU mAP / top-1 against the gallery size')
    parser.add_argument('--data-root', required=True,
                        help='CUHK-SYSU root in its native layout')
    parser.add_argument('--results', required=True, nargs='+',
                        help='search results file(s) (.npz)')
    parser.add_argument('--labels', nargs='+',
                        help='one label per results file (default: the '
                        'file names without .npz)')
    parser.add_argument(
        '--sizes', type=int, nargs='+', default=list(SIZES),
        help='gallery sizes, -1 for the full set (default: 50 100 500 1000 '
        '2000 4000 -1)')
    parser.add_argument('--det-thresh', type=float, default=0.5,
                        help='minimum detection score (default: 0.5)')
    parser.add_argument('--out-png', help='draw the curves to this PNG')
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.results):
        parser.error(f'--labels: {len(args.labels)} labels for '
                     f'{len(args.results)} results files')
    return args


def gallery_size_curve(data_root: str,
                       results: Sequence[str],
                       labels: Sequence[str],
                       sizes: Sequence[int] = SIZES,
                       det_thresh: float = 0.5) -> Dict[str, Dict[int, dict]]:
    """Evaluate results files at several CUHK-SYSU gallery sizes.

    Each protocol file is read once for all the results files.

    Args:
        data_root (str): CUHK-SYSU root.
        results (Sequence[str]): ``.npz`` results files.
        labels (Sequence[str]): One label per file.
        sizes (Sequence[int]): Gallery sizes (-1: the full set).
        det_thresh (float): Minimum detection score.

    Returns:
        dict: label -> size -> the metrics (``mAP``, ``top-1`` ...) and
        ``num_images`` (test images).
    """
    from mmps.datasets.native import load_test_entries
    from mmps.evaluation.functional import (PersonSearchProtocol,
                                            align_search_results,
                                            evaluate_person_search,
                                            load_search_results)
    arrays = [load_search_results(r) for r in results]
    out = {label: {} for label in labels}
    for size in sizes:
        entries, warnings = load_test_entries('cuhk-sysu', data_root, size)
        for text in warnings:
            print(f'gallery_size_curve: warning: {text}', file=sys.stderr)
        protocol = PersonSearchProtocol.from_data_infos(entries)
        for label, source, arr in zip(labels, results, arrays):
            inputs = align_search_results(arr, protocol, source=source)
            metrics = evaluate_person_search(
                protocol, *inputs, det_thresh=det_thresh)
            out[label][size] = dict(metrics, num_images=protocol.num_images)
    return out


def figures_of(curves: Dict[str, Dict[int, dict]]) -> Dict[str, float]:
    """``<label>_g<size>_mAP`` / ``_top1`` -> value."""
    figures = {}
    for label, by_size in curves.items():
        for size, metrics in by_size.items():
            figures[f'{label}_g{size}_mAP'] = float(metrics['mAP'])
            figures[f'{label}_g{size}_top1'] = float(metrics['top-1'])
    return figures


def draw(curves: Dict[str, Dict[int, dict]], path: str,
         num_images: Optional[int] = None) -> None:
    """mAP and top-1 against the gallery size, one line per results file;
    the full set is drawn at ``num_images - 1`` when given."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit('gallery_size_curve: --out-png needs matplotlib '
                         '(an optional dependency: pip install matplotlib)')
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in zip(axes, ('mAP', 'top-1'), ('mAP', 'top-1')):
        for label, by_size in curves.items():
            sizes = [s for s in by_size if s > 0]
            if -1 in by_size and num_images:
                sizes.append(-1)
            xs = [s if s > 0 else num_images - 1 for s in sizes]
            ax.plot(xs, [100 * by_size[s][key] for s in sizes], 'o-',
                    label=label)
        ax.set_xscale('log')
        ax.set_xlabel('gallery size')
        ax.set_ylabel(f'{title} (%)')
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    labels = args.labels or [
        osp.splitext(osp.basename(r))[0] for r in args.results
    ]
    from mmps.datasets.native import AnnotationError
    from mmps.evaluation.functional import SearchResultsError
    try:
        curves = gallery_size_curve(args.data_root, args.results, labels,
                                    args.sizes, args.det_thresh)
    except (SearchResultsError, AnnotationError, ValueError) as e:
        print(f'gallery_size_curve: error: {e}', file=sys.stderr)
        return 1
    from mmps.utils.benchmark import report_figures
    report_figures(figures_of(curves), args.json)
    if args.out_png:
        first = next(iter(curves.values()))
        num = int(next(iter(first.values()))['num_images'])
        draw(curves, args.out_png, num)
    return 0


if __name__ == '__main__':
    sys.exit(main())

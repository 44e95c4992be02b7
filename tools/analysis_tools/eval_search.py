# Copyright (c) OpenMMLab. All rights reserved.
"""Evaluate saved person search results on a dataset's test split.

Example::

    python tools/analysis_tools/eval_search.py --dataset prw \\
        --data-root data/PRW --results work_dirs/x/search_results.npz

The results file (see ``mmps.evaluation.functional.results_io``) holds
``gallery_img_names``, ``gallery_det_img``, ``gallery_dets``,
``gallery_feats`` and ``query_feats``. Prints one JSON object with ``mAP``,
``top-1``, ``top-5``, ``top-10``, ``det_recall``, ``det_ap``,
``det_recall_labeled`` and ``det_ap_labeled`` (fractions); with
``--protocol best_iou_det`` / ``both`` also (or only) the DICL authors' PRW
protocol, its figures suffixed ``_ref`` (``mAP_ref``...). ``--cbgm`` also
reports the figures re-scored by SeqNet's CBGM, suffixed ``_cbgm``
(``mAP_cbgm``...), from the query context of the file (``query_ctx_*``, as
``tools/test.py --out`` writes it).
"""
import argparse
import contextlib
import json
import sys
from typing import List, Optional, Sequence

DATASETS = ('cuhk-sysu', 'prw')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate person search results (.npz) on the test '
        'split of CUHK-SYSU or PRW (native files)')
    parser.add_argument('--dataset', required=True, choices=DATASETS)
    parser.add_argument('--data-root', required=True,
                        help='dataset root in its native layout')
    parser.add_argument('--results', required=True,
                        help='search results file (.npz)')
    parser.add_argument(
        '--gallery-size',
        type=int,
        default=100,
        help='CUHK-SYSU gallery size: 50, 100, 500, 1000, 2000, 4000 or -1 '
        '(full set); ignored for PRW (default: 100)')
    parser.add_argument('--cross-camera', action='store_true',
                        help='search only over other cameras (PRW)')
    parser.add_argument('--det-thresh', type=float, default=0.5,
                        help='minimum detection score (default: 0.5)')
    parser.add_argument(
        '--protocol',
        choices=('gt_box', 'best_iou_det', 'both'),
        default='gt_box',
        help="search protocol: 'gt_box' (the field's: the query box's "
        "feature), 'best_iou_det' (the DICL authors' PRW evaluation: the "
        'query frame\'s best-IoU detection as the query, gallery similarities '
        "x detection score; figures suffixed _ref) or 'both' "
        '(default: gt_box)')
    parser.add_argument(
        '--query-det-thresh', type=float, default=0.05,
        help="best_iou_det: candidate detections of a query frame score "
        'above it (default: 0.05)')
    parser.add_argument(
        '--cbgm', action='store_true',
        help="also report the figures re-scored by SeqNet's CBGM (context "
        'bipartite graph matching; needs the query_ctx_* fields; figures '
        'suffixed _cbgm)')
    parser.add_argument(
        '--cbgm-k1', type=int,
        help='CBGM: re-score the images of the k1 most similar detections '
        '(default: SeqNet\'s, 10 on CUHK-SYSU, 30 on PRW)')
    parser.add_argument(
        '--cbgm-k2', type=int,
        help='CBGM: context rows, the query box included (default: '
        'SeqNet\'s, 3 on CUHK-SYSU, 4 on PRW)')
    parser.add_argument('--json-out', help='also write the JSON here')
    return parser.parse_args(argv)


def load_test_protocol(dataset: str, data_root: str,
                       gallery_size: int = 100):
    """The test split of a dataset as a ``PersonSearchProtocol``.

    Read by :mod:`mmps.datasets.native` (numpy and scipy only; cached), into
    the entries the dataset class builds with ``check_images=False``: the
    same protocol as the test loop's. The readers' warnings go to stderr.

    Args:
        dataset (str): ``'cuhk-sysu'`` or ``'prw'``.
        data_root (str): Dataset root.
        gallery_size (int): CUHK-SYSU gallery size (-1: full set).

    Returns:
        PersonSearchProtocol: The test split.
    """
    from mmps.datasets.native import load_test_entries
    from mmps.evaluation.functional import PersonSearchProtocol
    entries, warnings = load_test_entries(dataset, data_root, gallery_size)
    for text in warnings:
        print(f'eval_search: warning: {text}', file=sys.stderr)
    return PersonSearchProtocol.from_data_infos(entries)


def evaluate_results_file(dataset: str,
                          data_root: str,
                          results: str,
                          gallery_size: int = 100,
                          cross_camera: bool = False,
                          det_thresh: float = 0.5,
                          protocols: Sequence[str] = ('gt_box', ),
                          query_det_thresh: float = 0.05,
                          cbgm: bool = False,
                          cbgm_k1: Optional[int] = None,
                          cbgm_k2: Optional[int] = None) -> dict:
    """Evaluate a results file on a dataset's test split.

    Args:
        dataset (str): ``'cuhk-sysu'`` or ``'prw'``.
        data_root (str): Dataset root.
        results (str): The ``.npz`` results file.
        gallery_size (int): CUHK-SYSU gallery size (-1: full set).
        cross_camera (bool): Search only over other cameras.
        det_thresh (float): Minimum detection score.
        protocols (Sequence[str]): Search protocols (``'gt_box'``,
            ``'best_iou_det'``).
        query_det_thresh (float): ``best_iou_det``'s candidate threshold.
        cbgm (bool): Also report the figures with CBGM (the file must hold
            the query context).
        cbgm_k1 (int, optional): CBGM's k1 (None: SeqNet's of the dataset).
        cbgm_k2 (int, optional): CBGM's k2 (None: SeqNet's of the dataset).

    Returns:
        dict: The metrics (fractions) and what was evaluated.
    """
    from mmps.evaluation.functional import (align_search_results,
                                            evaluate_person_search,
                                            load_search_results)
    protocol = load_test_protocol(dataset, data_root, gallery_size)
    arrays = load_search_results(results)
    det_img, dets, det_feats, query_feats = align_search_results(
        arrays, protocol, source=results)
    rescoring = None
    if cbgm:
        from mmps.evaluation.functional import (CBGM, CBGM_DEFAULTS,
                                                search_results_context)
        k1, k2 = CBGM_DEFAULTS[dataset]
        rescoring = CBGM(search_results_context(arrays, source=results),
                         k1 if cbgm_k1 is None else cbgm_k1,
                         k2 if cbgm_k2 is None else cbgm_k2)
    metrics = evaluate_person_search(
        protocol,
        det_img,
        dets,
        det_feats,
        query_feats,
        det_thresh=det_thresh,
        cross_camera=cross_camera,
        protocols=protocols,
        query_det_thresh=query_det_thresh,
        cbgm=rescoring)
    out = {k: float(v) for k, v in metrics.items()}
    out.update(
        dataset=dataset,
        gallery_size=gallery_size if dataset == 'cuhk-sysu' else None,
        cross_camera=bool(cross_camera),
        det_thresh=det_thresh,
        protocols=list(protocols),
        num_gallery=protocol.num_images,
        num_queries=protocol.num_queries,
        num_dets=int(len(dets)))
    if rescoring is not None:
        out.update(cbgm_k1=rescoring.k1, cbgm_k2=rescoring.k2)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmps.datasets import AnnotationError
    from mmps.evaluation.functional import SearchResultsError
    try:
        # logs go to stderr: stdout carries the JSON object only
        with contextlib.redirect_stdout(sys.stderr):
            out = evaluate_results_file(
                args.dataset,
                args.data_root,
                args.results,
                gallery_size=args.gallery_size,
                cross_camera=args.cross_camera,
                det_thresh=args.det_thresh,
                protocols=('gt_box', 'best_iou_det') if args.protocol
                == 'both' else (args.protocol, ),
                query_det_thresh=args.query_det_thresh,
                cbgm=args.cbgm,
                cbgm_k1=args.cbgm_k1,
                cbgm_k2=args.cbgm_k2)
    except (SearchResultsError, AnnotationError, ValueError) as e:
        print(f'eval_search: error: {e}', file=sys.stderr)
        return 1
    text = json.dumps(out)
    print(text)
    if args.json_out:
        with open(args.json_out, 'w') as f:
            f.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())

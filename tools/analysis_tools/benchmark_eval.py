# Copyright (c) OpenMMLab. All rights reserved.
"""Time the person search evaluation at the real datasets' sizes.

Writes annotation-only synthetic CUHK-SYSU and PRW roots with the real image,
identity and query counts (``mmps.datasets.synthetic.REAL_SIZES``), fakes ~5
detections per gallery image (jittered ground truth and spurious boxes,
random scores) with 256-d L2-normalised features (identity prototype +
noise, so targets can be found), and times ``eval_search`` for CUHK-SYSU with
galleries of 100 and 4000 and for PRW, plus ``eval_detection`` and the
protocol build. Building the inputs is not timed. Prints one ``name: value``
line per figure.

Example::

    python tools/analysis_tools/benchmark_eval.py --work-dir work_dirs/bench

``--reference N`` also times the straightforward per-query code of the field
(Python loops over gallery images, sklearn's AP) on N queries of each setting,
extrapolates to all queries and reports the largest AP difference.
"""
import argparse
import json
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

FEAT_DIM = 256


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark the person search evaluation at real sizes')
    parser.add_argument('--json', help='also write the figures to this file')
    parser.add_argument(
        '--work-dir',
        help='where the synthetic roots go (kept and reused); a temporary '
        'folder, removed afterwards, if not given')
    parser.add_argument(
        '--reference',
        type=int,
        default=0,
        metavar='N',
        help='also time the per-query reference on N queries per setting '
        'and extrapolate (default: 0, off)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--no-commands', action='store_true',
        help='skip the whole-command times (eval_search.py in a fresh '
        'process, cold then warm cache)')
    return parser.parse_args(argv)


# -- inputs -------------------------------------------------------------------
def make_roots(work_dir: str, seed: int) -> Dict[str, object]:
    """Annotation-only roots of real size, reused when already written."""
    from mmps.datasets.synthetic import (REAL_SIZES, make_synthetic_cuhk_sysu,
                                         make_synthetic_prw)
    makers = {'cuhk-sysu': make_synthetic_cuhk_sysu, 'prw': make_synthetic_prw}
    truths = {}
    for name, make in makers.items():
        root = osp.join(work_dir, name)
        cache = osp.join(work_dir, f'{name}.truth.pkl')
        key = dict(seed=seed, sizes=REAL_SIZES[name])
        if osp.isfile(cache):
            with open(cache, 'rb') as f:
                stored = pickle.load(f)
            if stored['key'] == key and osp.isdir(root):
                truths[name] = stored['truth']
                continue
        if osp.isdir(root):
            shutil.rmtree(root)
        truth = make(root, seed=seed, annotations_only=True,
                     **REAL_SIZES[name])
        with open(cache, 'wb') as f:
            pickle.dump(dict(key=key, truth=truth), f)
        truths[name] = truth
    return truths


def fake_outputs(protocol, seed: int, dim: int = FEAT_DIM) -> dict:
    """Detections and features that a fair person search model could give.

    Every box is detected with probability 0.85 (jittered by ~6 % of its size,
    score in [0.5, 1) nine times in ten), plus ~1 spurious box per image;
    features are the identity's prototype plus noise (random for unlabeled
    people and spurious boxes), L2-normalised.
    """
    rng = np.random.default_rng(seed)
    G = protocol.num_images
    gt_img = protocol.img_of_gt
    boxes, pids = protocol.gt_boxes, protocol.gt_pids
    found = rng.random(len(boxes)) < 0.85
    b = boxes[found]
    wh = np.tile(b[:, 2:] - b[:, :2], 2)
    jit = b + rng.normal(0, 0.06, b.shape) * wh
    score = np.where(
        rng.random(len(b)) < 0.9, rng.uniform(0.5, 1, len(b)),
        rng.uniform(0, 0.5, len(b)))
    n_sp = rng.poisson(1.0, G)
    sp_img = np.repeat(np.arange(G), n_sp)
    xy = rng.uniform(0, 1000, (len(sp_img), 2))
    size = rng.uniform([20, 50], [120, 300], (len(sp_img), 2))
    sp = np.concatenate([xy, xy + size], 1)
    det_img = np.concatenate([gt_img[found], sp_img])
    dets = np.concatenate([
        np.concatenate([jit, score[:, None]], 1),
        np.concatenate([sp, rng.uniform(0, 1, (len(sp), 1))], 1)
    ]).astype(np.float32)

    uniq, inv = np.unique(pids, return_inverse=True)
    protos = _normed(rng.normal(size=(len(uniq), dim)))
    noise = 0.12  # mAP ~0.5 on PRW, ~0.7 on CUHK-SYSU
    f_gt = protos[inv[found]] + rng.normal(0, noise, (int(found.sum()), dim))
    unl = pids[found] < 0
    f_gt[unl] = rng.normal(size=(int(unl.sum()), dim))
    f_sp = rng.normal(size=(len(sp), dim))
    feats = _normed(np.concatenate([f_gt, f_sp])).astype(np.float32)
    q = np.searchsorted(uniq, protocol.query_pids)
    qf = protos[np.minimum(q, len(uniq) - 1)] + rng.normal(
        0, noise, (protocol.num_queries, dim))
    qf = _normed(qf).astype(np.float32)
    order = np.argsort(det_img, kind='stable')
    return dict(det_img=det_img[order], dets=dets[order],
                det_feats=feats[order], query_feats=qf)


def _normed(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def cuhk_infos_with_gallery(infos: List[dict], truth, size: int
                            ) -> List[dict]:
    """Test infos of one TestG file with the galleries of another size.

    The generator's truth lists the galleries of every ``TestG<S>.mat`` it
    wrote; using it spares parsing ``TestG4000.mat`` (11.6 M entries).
    """
    gallery = [d for d in infos if not d['is_query']]
    index = {d['img_name']: d['img_id'] for d in gallery}
    out = list(gallery)
    for d in infos:
        if d['is_query']:
            names = truth.galleries[size][d['query_id']]
            out.append(
                dict(d, gallery_img_ids=np.array([index[n] for n in names],
                                                 np.int64)))
    return out


# -- the field's per-query code, for --reference ------------------------------
def reference_setup(protocol, det_img, dets, det_feats,
                    det_thresh: float = 0.5) -> tuple:
    """Per-image detections and ground truth as the field's code holds them
    (``name_to_det_feat`` and the annotations)."""
    keep = dets[:, 4] >= det_thresh
    order = np.flatnonzero(keep)[np.argsort(det_img[keep], kind='stable')]
    imgs, starts = np.unique(det_img[order], return_index=True)
    per_img = {
        int(g): (dets[idx], det_feats[idx])
        for g, idx in zip(imgs, np.split(order, starts[1:]))
    }
    gts = {}
    for g in range(protocol.num_images):
        a, b = protocol.gt_offsets[g], protocol.gt_offsets[g + 1]
        gts[g] = (protocol.gt_boxes[a:b], protocol.gt_pids[a:b])
    return per_img, gts


def reference_search(protocol, setup: tuple, query_feats: np.ndarray,
                     queries: np.ndarray) -> np.ndarray:
    """APs of some queries, computed the way the field's ``eval_func.py``
    does (per gallery image, in Python)."""
    from sklearn.metrics import average_precision_score
    per_img, gts = setup

    def iou(a, b):
        x1, y1 = max(a[0], b[0]), max(a[1], b[1])
        x2, y2 = min(a[2], b[2]), min(a[3], b[3])
        inter = max(0, x2 - x1) * max(0, y2 - y1)
        union = (a[2] - a[0]) * (a[3] - a[1]) + \
            (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter * 1.0 / union

    aps = []
    for q in queries:
        pid, feat_q = protocol.query_pids[q], query_feats[q]
        gallery = protocol.gallery(q)
        if gallery is None:
            gallery = [
                g for g in range(protocol.num_images)
                if g != protocol.query_img[q]
            ]
        y_true, y_score = [], []
        count_gt = count_tp = 0
        for g in gallery:
            g = int(g)
            boxes, pids = gts[g]
            gt = boxes[pids == pid][0] if (pids == pid).any() else None
            count_gt += gt is not None
            if g not in per_img:
                continue
            det, feat_g = per_img[g]
            sim = feat_g.dot(feat_q).ravel()
            label = np.zeros(len(sim), np.int32)
            if gt is not None:
                w, h = gt[2] - gt[0], gt[3] - gt[1]
                thr = min(0.5, (w * h * 1.0) / ((w + 10) * (h + 10)))
                inds = np.argsort(sim)[::-1]
                sim, det = sim[inds], det[inds]
                for j, roi in enumerate(det[:, :4]):
                    if iou(roi, gt) >= thr:
                        label[j] = 1
                        count_tp += 1
                        break
            y_true.extend(list(label))
            y_score.extend(list(sim))
        aps.append(0. if count_tp == 0 else average_precision_score(
            y_true, y_score) * count_tp / count_gt)
    return np.array(aps)


# -- main ---------------------------------------------------------------------
def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def run(work_dir: str, seed: int, reference: int,
        commands: bool = True) -> Dict[str, float]:
    from mmps.datasets import CUHKSYSUDataset, PRWDataset
    from mmps.evaluation.functional import (PersonSearchProtocol,
                                            eval_detection, eval_search)
    from mmps.utils import register_all_modules
    register_all_modules()
    truths = make_roots(work_dir, seed)

    def infos_of(ds):
        return [ds.get_data_info(i) for i in range(len(ds))]

    cuhk = infos_of(
        CUHKSYSUDataset(
            osp.join(work_dir, 'cuhk-sysu'),
            split='test',
            gallery_size=100,
            check_images=False,
            serialize_data=False))
    prw = infos_of(
        PRWDataset(
            osp.join(work_dir, 'prw'),
            split='test',
            check_images=False,
            serialize_data=False))
    settings = [
        ('cuhk_sysu_g100', cuhk_infos_with_gallery(cuhk, truths['cuhk-sysu'],
                                                   100), False),
        ('cuhk_sysu_g4000', cuhk_infos_with_gallery(cuhk, truths['cuhk-sysu'],
                                                    4000), False),
        ('prw', prw, False),
        ('prw_cross_cam', prw, True),
    ]
    # the truth's TestG100 galleries are those the dataset read
    for a, b in zip(cuhk, settings[0][1]):
        if a['is_query'] and not np.array_equal(a['gallery_img_ids'],
                                                b['gallery_img_ids']):
            raise RuntimeError('synthetic truth and TestG100.mat differ')

    figures = {}
    outputs = {}
    results = {}
    cbgm = commands and has_cbgm_option()
    for name, infos, cross in settings:
        protocol, t_proto = _timed(PersonSearchProtocol.from_data_infos,
                                   infos)
        dataset = name.split('_g')[0].replace('_cross_cam', '')
        if dataset not in outputs:
            outputs[dataset] = fake_outputs(protocol, seed)
        o = outputs[dataset]
        if commands and name in ('cuhk_sysu_g100', 'prw'):
            results[name.split('_g')[0].replace('_', '-')] = write_results(
                work_dir, dataset, protocol, o, context=cbgm)
        res, t_search = _timed(
            eval_search,
            protocol,
            o['det_img'],
            o['dets'],
            o['det_feats'],
            o['query_feats'],
            cross_camera=cross)
        figures[f'{name}_protocol_s'] = t_proto
        figures[f'{name}_search_s'] = t_search
        figures[f'{name}_mAP'] = res['mAP']
        figures[f'{name}_top1'] = res['top-1']
        if name in ('cuhk_sysu_g100', 'prw'):
            figures[f'{dataset}_num_queries'] = protocol.num_queries
            figures[f'{dataset}_num_gallery'] = protocol.num_images
            figures[f'{dataset}_dets_per_image'] = \
                len(o['dets']) / protocol.num_images
            kept = (o['dets'][:, 4] >= 0.5).sum() / protocol.num_images
            figures[f'{dataset}_kept_dets_per_image'] = kept
            (d_all, d_lab), t_det = _timed(
                lambda: [
                    eval_detection(protocol, o['det_img'], o['dets'],
                                   labeled_only=lab) for lab in (False, True)
                ])
            figures[f'{dataset}_detection_s'] = t_det
            figures[f'{dataset}_det_recall'] = d_all['recall']
            figures[f'{dataset}_det_ap'] = d_all['ap']
            figures[f'{dataset}_det_ap_labeled'] = d_lab['ap']
        if reference > 0:
            qs = np.linspace(0, protocol.num_queries - 1,
                             min(reference, protocol.num_queries)).astype(int)
            if cross:  # the reference above does not drop cameras
                continue
            setup, t_setup = _timed(reference_setup, protocol,
                                    o['det_img'], o['dets'], o['det_feats'])
            ref, t_ref = _timed(reference_search, protocol, setup,
                                o['query_feats'], qs)
            figures[f'{name}_reference_s_extrapolated'] = \
                t_setup + t_ref * protocol.num_queries / len(qs)
            figures[f'{name}_reference_max_ap_diff'] = float(
                np.abs(ref - res['aps'][qs]).max())
    if commands:
        figures['cbgm_command_rows'] = int(cbgm)
        figures.update(command_times(work_dir, results, cbgm))
    return figures


# -- whole commands -------------------------------------------------------------
EVAL_SEARCH = osp.join(osp.dirname(osp.abspath(__file__)), 'eval_search.py')
#: (figure name, dataset, extra eval_search options)
COMMANDS = [('cuhk_sysu_g100', 'cuhk-sysu', ['--gallery-size', '100']),
            ('cuhk_sysu_g4000', 'cuhk-sysu', ['--gallery-size', '4000']),
            ('prw', 'prw', [])]


def has_cbgm_option() -> bool:
    """Whether ``eval_search.py --help`` lists ``--cbgm``."""
    out = subprocess.run([sys.executable, EVAL_SEARCH, '--help'],
                         capture_output=True, text=True)
    return '--cbgm' in out.stdout


def fake_context(protocol, o: dict, k2: int = 4) -> tuple:
    """Query context of the fake outputs: the query box and feature, then
    the highest-scoring detections of the query image (``k2 - 1``)."""
    rows_q, rows_d, rows_f = [], [], []
    for q in range(protocol.num_queries):
        own = np.flatnonzero(o['det_img'] == protocol.query_img[q])
        own = own[np.argsort(-o['dets'][own, 4], kind='stable')][:k2 - 1]
        rows_q += [q] * (1 + len(own))
        rows_d.append(np.concatenate(
            [[[*protocol.query_boxes[q], 1.0]], o['dets'][own]]))
        rows_f.append(np.concatenate([o['query_feats'][q:q + 1],
                                      o['det_feats'][own]]))
    return (np.array(rows_q, np.int64),
            np.concatenate(rows_d).astype(np.float32),
            np.concatenate(rows_f).astype(np.float32))


def write_results(work_dir: str, name: str, protocol, o: dict,
                  context: bool) -> str:
    """The fake outputs as a results file of ``eval_search.py``."""
    from mmps.evaluation.functional import save_search_results
    path = osp.join(work_dir, f'{name}.results.npz')
    ctx = None
    if context:
        from mmps.evaluation.functional.cbgm import QueryContext
        ctx = QueryContext(*fake_context(protocol, o))
    save_search_results(path, protocol.img_names, o['det_img'], o['dets'],
                        o['det_feats'], o['query_feats'], query_context=ctx)
    return path


def command_times(work_dir: str, results: Dict[str, str],
                  cbgm: bool) -> Dict[str, float]:
    """Seconds of ``eval_search.py`` in a fresh process: the first run with
    an empty annotation cache, the second with the cache it filled."""
    figures = {}
    runs = [(n, d, opts) for n, d, opts in COMMANDS]
    if cbgm:
        runs += [(f'{n}_cbgm', d, opts + ['--cbgm']) for n, d, opts in COMMANDS]
    for name, dataset, opts in runs:
        cache = tempfile.mkdtemp(prefix='mmps-cache-', dir=work_dir)
        env = dict(os.environ, MMPS_CACHE_DIR=cache)
        cmd = [sys.executable, EVAL_SEARCH, '--dataset', dataset,
               '--data-root', osp.join(work_dir, dataset), '--results',
               results[dataset]] + opts
        for run in ('cold', 'warm'):
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True,
                                 env=env)
            seconds = time.perf_counter() - t
            if out.returncode:
                raise RuntimeError(f'{" ".join(cmd)} failed:\n'
                                   f'{out.stderr[-2000:]}')
            figures[f'{name}_command_{run}_s'] = seconds
        metrics = json.loads(out.stdout)
        figures[f'{name}_command_mAP'] = metrics['mAP']
        if 'mAP_cbgm' in metrics:
            figures[f'{name}_command_mAP_cbgm'] = metrics['mAP_cbgm']
        shutil.rmtree(cache, ignore_errors=True)
    return figures


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    tmp = None
    work_dir = args.work_dir
    if work_dir is None:
        tmp = work_dir = tempfile.mkdtemp(prefix='mmps-bench-')
    os.makedirs(work_dir, exist_ok=True)
    try:
        figures = run(work_dir, args.seed, args.reference,
                      commands=not args.no_commands)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    from mmps.utils import report_figures
    report_figures(figures, args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())

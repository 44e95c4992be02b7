# Copyright (c) OpenMMLab. All rights reserved.
"""Person search: mAP, top-k and per-query rankings, vectorised.

The numbers are those of the common ``eval_func.py`` of SeqNet / NAE / COAT
(``eval_search_cuhk``, ``eval_search_prw``), computed without a Python loop
over gallery images:

* The gallery ``G_q`` of a query (identity ``p``, own image ``i_q``, camera
  ``c_q``) is the query's list (CUHK-SYSU ``TestG<S>``) or every gallery
  image but ``i_q`` (PRW, CUHK-SYSU full set); the cross-camera variant also
  drops the images of camera ``c_q``. Only detections with score
  ``>= det_thresh`` count; the similarity is the dot product of the features.
* The match rule: in every image of ``G_q`` that contains ``p`` (its first
  box with identity ``p`` is the target), the most similar detection with
  ``IoU >= min(0.5, w * h / ((w + 10) * (h + 10)))`` is the one true
  positive (the first in detection order on a tie); every other detection is
  a negative.
* ``AP = AP_sklearn * tp / gt`` over the kept detections of ``G_q`` (0
  without a true positive); top-k is 1 when a true positive ranks ``<= k``,
  the rank of a detection being the number of gallery detections with a
  similarity ``>=`` its own (ties are pessimistic).

Both figures reduce to counting (see
:func:`~mmps.evaluation.functional.detection.ap_from_counts`): per query only
the true positives' scores and, for each, the number of kept gallery
detections scoring at least as high are needed (no sort of the gallery).
:func:`rank_search` lists the best detections of chosen queries under the
same rules, with their match flags (what the visualisation draws).
:func:`eval_search` optionally re-scores the similarities of each query by
SeqNet's CBGM before the match rule (:mod:`.cbgm`).

Only numpy (and scipy for CBGM) is imported here.
"""
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .cbgm import CBGM
from .detection import (ap_from_counts, concat_ranges, eval_detection,
                        first_argmax, pairwise_iou, search_iou_thresholds)
from .protocol import PersonSearchProtocol, check_detections, check_finite
from .search_protocols import (SEARCH_PROTOCOLS, check_search_protocols,
                               protocol_features)

#: Gallery lists covering more than this fraction of the detections are
#: scored with one dense matrix product per chunk of queries; smaller ones
#: with a product over the gathered gallery features of each query.
DENSE_GALLERY_FRACTION = 0.125
#: Elements of the dense similarity block computed at once.
_DENSE_BLOCK = 1 << 24


@dataclass
class QueryRanking:
    """The best gallery detections of one query, best first.

    Ties in similarity list the negatives first, then the detections in
    gallery order, so that the query is a top-k hit exactly when
    ``(matches & (ranks <= k)).any()``.

    Attributes:
        query (int): The query's index in the protocol.
        det_index (np.ndarray): (k, ) int64 rows of the ``dets`` given.
        img (np.ndarray): (k, ) int64 gallery indices of the detections.
        boxes (np.ndarray): (k, 4) x1, y1, x2, y2 (original pixels).
        scores (np.ndarray): (k, ) detection scores.
        sims (np.ndarray): (k, ) similarities to the query.
        ranks (np.ndarray): (k, ) int64 the protocol's rank of each detection:
            the number of gallery detections as similar or more.
        matches (np.ndarray): (k, ) bool, the detection is a true positive
            under the protocol's match rule.
        num_gt (int): Images of the query's gallery that show its identity.
    """

    query: int
    det_index: np.ndarray
    img: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    sims: np.ndarray
    ranks: np.ndarray
    matches: np.ndarray
    num_gt: int


class _SearchIndex:
    """What every query reads: kept detections by image, target boxes and the
    detections that pass the IoU rule of each target."""

    def __init__(self, protocol: PersonSearchProtocol, det_img: np.ndarray,
                 dets: np.ndarray, det_feats: np.ndarray,
                 det_thresh: float) -> None:
        G = protocol.num_images
        keep = np.flatnonzero(dets[:, 4] >= det_thresh)
        order = keep[np.argsort(det_img[keep], kind='stable')]
        self.det_index = order
        self.d_img = det_img[order]
        self.d_feat = det_feats[order]
        self.d_off = np.searchsorted(self.d_img, np.arange(G + 1))
        self.num_dets = len(order)
        d_box = dets[order, :4]

        # targets: the first box of each labeled identity in each image
        gt_img = protocol.img_of_gt
        pids = protocol.gt_pids
        lab = np.flatnonzero(pids >= 0)
        lab = lab[np.lexsort((lab, pids[lab], gt_img[lab]))]
        first = np.r_[True, (gt_img[lab][1:] != gt_img[lab][:-1]) |
                      (pids[lab][1:] != pids[lab][:-1])]
        tgt = np.sort(lab[first[:len(lab)]])  # gt indices, by image
        self.gt_img = gt_img

        # kept detections that pass the IoU rule of a target of their image
        n_tgt_img = np.bincount(gt_img[tgt], minlength=G)
        t_off = np.concatenate([[0], np.cumsum(n_tgt_img)])
        lens = n_tgt_img[self.d_img]
        p_det = np.repeat(np.arange(self.num_dets), lens)
        p_gt = tgt[concat_ranges(t_off[self.d_img], lens)]
        thr = search_iou_thresholds(protocol.gt_boxes[p_gt])
        ok = pairwise_iou(d_box[p_det], protocol.gt_boxes[p_gt]) >= thr
        p_det, p_gt = p_det[ok], p_gt[ok]
        by_gt = np.lexsort((p_det, p_gt))
        self.pass_det = p_det[by_gt]
        self.pass_off = np.searchsorted(p_gt[by_gt],
                                        np.arange(len(pids) + 1))

        # identity -> its targets
        by_pid = tgt[np.argsort(pids[tgt], kind='stable')]
        self.pid_values, starts = np.unique(pids[by_pid], return_index=True)
        self.pid_off = np.r_[starts, len(by_pid)]
        self.pid_targets = by_pid

    def targets(self, pid: int) -> np.ndarray:
        j = np.searchsorted(self.pid_values, pid)
        if j == len(self.pid_values) or self.pid_values[j] != pid:
            return np.zeros(0, np.int64)
        return self.pid_targets[self.pid_off[j]:self.pid_off[j + 1]]


def _search_queries(protocol: PersonSearchProtocol, idx: _SearchIndex,
                    query_feats: np.ndarray, queries: np.ndarray,
                    cross_camera: bool, with_target_only: bool
                    ) -> Iterator[Tuple[int, np.ndarray, Optional[np.ndarray],
                                        int, Tuple[np.ndarray, np.ndarray]]]:
    """The gallery and match rules, query by query.

    Args:
        protocol (PersonSearchProtocol): The test split.
        idx (_SearchIndex): Its kept detections.
        query_feats (np.ndarray): (n, D) features of ``queries``, row by row.
        queries (np.ndarray): (n, ) protocol indices of the queries.
        cross_camera (bool): Drop the gallery images of the query's camera.
        with_target_only (bool): Skip the queries whose gallery holds no
            target (their similarities are not computed).

    Yields:
        tuple: ``q``; ``sims``, the similarities of the gallery detections
        (kept detections outside the gallery are ``-inf``); ``pos``, the kept
        detection of every entry of ``sims`` (None: entry ``i`` is kept
        detection ``i``); ``num_gt``, the number of target images of the
        gallery; ``cands``, the entries passing the IoU rule of a target and
        their target (:func:`_true_positives` of these similarities, or of
        re-scored ones, gives the true positives).
    """
    G, M, d_off = protocol.num_images, idx.num_dets, idx.d_off
    d_lens = np.diff(d_off)
    lists = protocol.gallery_offsets is not None
    if lists:
        mean = d_lens[protocol.gallery_ids].sum() / max(protocol.num_queries,
                                                        1)
        dense = mean > DENSE_GALLERY_FRACTION * M
    else:
        dense = True
        if cross_camera:
            d_cam = protocol.img_cams[idx.d_img]
            cams = np.unique(d_cam)
            cam_dets = {int(c): np.flatnonzero(d_cam == c) for c in cams}
    mark = np.zeros(G, bool)
    img_pos = np.zeros(G, np.int64)
    n = len(queries)
    chunk = max(1, _DENSE_BLOCK // max(M, 1)) if dense else max(n, 1)
    for c0 in range(0, n, chunk):
        block = query_feats[c0:c0 + chunk] @ idx.d_feat.T if dense else None
        for j in range(c0, min(c0 + chunk, n)):
            q = int(queries[j])
            qi, qc = protocol.query_img[q], protocol.query_cams[q]
            tg = idx.targets(protocol.query_pids[q])
            tg_img = idx.gt_img[tg]
            pos = None
            if lists:
                gal = protocol.gallery(q)
                if cross_camera:
                    gal = gal[protocol.img_cams[gal] != qc]
                mark[gal] = True
                tg = tg[mark[tg_img]]
                mark[gal] = False
                if len(tg) == 0 and with_target_only:
                    continue
                lens = d_lens[gal]
                pos = concat_ranges(d_off[gal], lens)
                img_pos[gal] = np.cumsum(lens) - lens - d_off[gal]
                sims = block[j - c0, pos] if dense else \
                    idx.d_feat[pos] @ query_feats[j]
            else:
                sel = tg_img != qi
                if cross_camera:
                    sel &= protocol.img_cams[tg_img] != qc
                tg = tg[sel]
                if len(tg) == 0 and with_target_only:
                    continue
                sims = block[j - c0]
                if qi >= 0:
                    sims[d_off[qi]:d_off[qi + 1]] = -np.inf
                if cross_camera and int(qc) in cam_dets:
                    sims[cam_dets[int(qc)]] = -np.inf
            starts = idx.pass_off[tg]
            lens = idx.pass_off[tg + 1] - starts
            cand = idx.pass_det[concat_ranges(starts, lens)]
            if lists:
                cand = img_pos[idx.d_img[cand]] + cand
            yield q, sims, pos, len(tg), (cand,
                                          np.repeat(np.arange(len(tg)), lens))


def _true_positives(sims: np.ndarray,
                    cands: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The most similar passing entry of each target image (the first on a
    tie), in target order: the entries of ``sims`` that are true positives."""
    cand, seg = cands
    return cand[first_argmax(seg, sims[cand])]


class _Figures:
    """AP and best rank of every query, added one query at a time."""

    def __init__(self, num_queries: int) -> None:
        self.aps = np.zeros(num_queries)
        self.best = np.full(num_queries, np.iinfo(np.int64).max)
        self.count_gt = np.zeros(num_queries, np.int64)
        self.count_tp = np.zeros(num_queries, np.int64)

    def add(self, q: int, sims: np.ndarray, num_gt: int,
            tp_pos: np.ndarray) -> None:
        self.count_gt[q] = num_gt
        if len(tp_pos) == 0:
            return
        tp = sims[tp_pos]
        self.count_tp[q] = len(tp)
        tp_ge, n_ge = _rank_counts(sims, tp)
        self.aps[q] = ap_from_counts(tp_ge, n_ge, num_gt)
        self.best[q] = n_ge[-1]

    def result(self, topk: Tuple[int, ...]) -> dict:
        """The output of :func:`eval_search`."""
        Q = len(self.aps)
        hits = self.best[:, None] <= np.array(topk, np.int64)[None, :]
        out = dict(mAP=float(self.aps.mean()) if Q else 0.0)
        for j, k in enumerate(topk):
            out[f'top-{k}'] = float(hits[:, j].mean()) if Q else 0.0
        out.update(aps=self.aps, hits=hits, count_gt=self.count_gt,
                   count_tp=self.count_tp)
        return out


def _rank_counts(sims: np.ndarray,
                 tp_scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For each true positive (ascending score): #TP and #dets scoring >= it.

    Args:
        sims (np.ndarray): Scores of every gallery detection (the true
            positives included).
        tp_scores (np.ndarray): (T, ) scores of the true positives.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``tp_ge`` and ``n_ge``, (T, ) each.
    """
    T = len(tp_scores)
    if T == 1:
        return np.ones(1), np.array([np.count_nonzero(sims >= tp_scores[0])])
    s = np.sort(tp_scores)
    cand = sims[sims >= s[0]]
    k = np.searchsorted(s, cand, side='right')  # true positives <= c
    hist = np.bincount(k, minlength=T + 1)
    n_ge = np.cumsum(hist[::-1])[::-1][1:]
    tp_ge = T - np.searchsorted(s, s, side='left')
    return tp_ge, n_ge


def _check_inputs(protocol: PersonSearchProtocol, det_img: np.ndarray,
                  dets: np.ndarray, det_feats: np.ndarray,
                  query_feats: np.ndarray) -> Tuple[np.ndarray, ...]:
    """The search inputs as checked arrays, features in one float dtype."""
    det_img, dets, det_feats = check_detections(protocol, det_img, dets,
                                                det_feats)
    Q = protocol.num_queries
    query_feats = np.asarray(query_feats)
    if query_feats.size == 0 and Q == 0:
        query_feats = query_feats.reshape(0, det_feats.shape[1])
    if query_feats.ndim != 2 or len(query_feats) != Q:
        raise ValueError(f'query_feats must be ({Q}, D) (one row per query of '
                         f'the protocol), got shape {query_feats.shape}')
    if len(det_feats) and query_feats.shape[1] != det_feats.shape[1]:
        raise ValueError(f'query_feats have {query_feats.shape[1]} dims, '
                         f'det_feats {det_feats.shape[1]}')
    check_finite(query_feats, 'query_feats')
    dtype = np.result_type(det_feats.dtype, query_feats.dtype, np.float32)
    return (det_img, dets, det_feats.astype(dtype, copy=False),
            query_feats.astype(dtype, copy=False))


def eval_search(protocol: PersonSearchProtocol,
                det_img: np.ndarray,
                dets: np.ndarray,
                det_feats: np.ndarray,
                query_feats: np.ndarray,
                det_thresh: float = 0.5,
                cross_camera: bool = False,
                topk: Sequence[int] = (1, 5, 10),
                cbgm: Optional[CBGM] = None) -> dict:
    """Person search mAP and top-k (the field's protocol, see the module).

    A query whose gallery contains no image of its identity (``count_gt ==
    0``, where the reference divides by zero) has AP 0 and no hit, and is
    still averaged; so is one whose targets are never detected, and one of an
    unlabeled identity (``person_id < 0``: no target). Ties: a true
    positive ranks after every detection scoring at least as high (its rank
    is the number of gallery detections with score ``>=`` its own), which is
    also how sklearn's AP groups tied scores.

    Args:
        protocol (PersonSearchProtocol): The test split.
        det_img (np.ndarray): (M, ) gallery index of every detection.
        dets (np.ndarray): (M, 5) x1, y1, x2, y2, score (original pixels).
        det_feats (np.ndarray): (M, D) detection features.
        query_feats (np.ndarray): (Q, D) query features, in protocol order.
        det_thresh (float): Minimum detection score. Defaults to 0.5.
        cross_camera (bool): Drop the gallery images of the query's camera.
            Defaults to False.
        topk (Sequence[int]): Ranks of the top-k accuracies.
            Defaults to (1, 5, 10).
        cbgm (CBGM, optional): Re-score the similarities by SeqNet's context
            bipartite graph matching (:mod:`.cbgm`). Defaults to None.

    Returns:
        dict: ``mAP`` and ``top-<k>`` (floats, 0 without queries), per query
        ``aps`` (Q, ) float64, ``hits`` (Q, len(topk)) bool, ``count_gt`` and
        ``count_tp`` (Q, ) int64.
    """
    return _eval_search(protocol, det_img, dets, det_feats, query_feats,
                        det_thresh, cross_camera, topk, cbgm,
                        plain=cbgm is None)[0]


def _eval_search(protocol: PersonSearchProtocol, det_img: np.ndarray,
                 dets: np.ndarray, det_feats: np.ndarray,
                 query_feats: np.ndarray, det_thresh: float,
                 cross_camera: bool, topk: Sequence[int],
                 cbgm: Optional[CBGM], plain: bool) -> List[dict]:
    """:func:`eval_search` without CBGM (``plain``) and / or with it
    (``cbgm``), in one pass over the queries.

    Returns:
        list[dict]: The plain figures first, then those with CBGM.
    """
    det_img, dets, det_feats, query_feats = _check_inputs(
        protocol, det_img, dets, det_feats, query_feats)
    Q = protocol.num_queries
    topk = tuple(int(k) for k in topk)
    idx = _SearchIndex(protocol, det_img, dets, det_feats, det_thresh)
    rescore = None if cbgm is None else cbgm.rescorer(
        Q, idx.d_img, idx.d_off, idx.d_feat, det_thresh)
    figures = [_Figures(Q) for _ in range(plain + (cbgm is not None))]
    for q, sims, pos, num_gt, cands in _search_queries(
            protocol, idx, query_feats, np.arange(Q), cross_camera,
            with_target_only=True):
        if plain:
            figures[0].add(q, sims, num_gt, _true_positives(sims, cands))
        if rescore is not None:
            sims = rescore(q, sims, pos)
            figures[-1].add(q, sims, num_gt, _true_positives(sims, cands))
    return [f.result(topk) for f in figures]


def rank_search(protocol: PersonSearchProtocol,
                det_img: np.ndarray,
                dets: np.ndarray,
                det_feats: np.ndarray,
                query_feats: np.ndarray,
                queries: Optional[Sequence[int]] = None,
                k: Optional[int] = 10,
                det_thresh: float = 0.5,
                cross_camera: bool = False) -> List[QueryRanking]:
    """The top-k gallery detections of queries, under :func:`eval_search`'s
    gallery and match rules.

    Args:
        protocol (PersonSearchProtocol): The test split.
        det_img (np.ndarray): (M, ) gallery index of every detection.
        dets (np.ndarray): (M, 5) x1, y1, x2, y2, score (original pixels).
        det_feats (np.ndarray): (M, D) detection features.
        query_feats (np.ndarray): (Q, D) query features, in protocol order.
        queries (Sequence[int], optional): Protocol indices of the queries to
            rank. Defaults to None (all).
        k (int, optional): Detections per query; None for the whole gallery.
            Defaults to 10.
        det_thresh (float): Minimum detection score. Defaults to 0.5.
        cross_camera (bool): Drop the gallery images of the query's camera.
            Defaults to False.

    Returns:
        list[QueryRanking]: One per query of ``queries``, in that order.
    """
    det_img, dets, det_feats, query_feats = _check_inputs(
        protocol, det_img, dets, det_feats, query_feats)
    Q = protocol.num_queries
    queries = np.arange(Q) if queries is None else np.asarray(
        queries, np.int64).reshape(-1)
    if len(queries) and (queries.min() < 0 or queries.max() >= Q):
        raise ValueError(f'queries must index the {Q} queries of the '
                         f'protocol, got {queries.tolist()[:5]}...')
    idx = _SearchIndex(protocol, det_img, dets, det_feats, det_thresh)
    rankings = []
    for q, sims, pos, num_gt, cands in _search_queries(
            protocol, idx, query_feats[queries], queries, cross_camera,
            with_target_only=False):
        tp_pos = _true_positives(sims, cands)
        matches = np.zeros(len(sims), bool)
        matches[tp_pos] = True
        valid = np.flatnonzero(~np.isneginf(sims))  # the query's gallery
        sims, matches = sims[valid], matches[valid]
        # best first; on a tie the negatives first (the pessimistic rank)
        top = np.lexsort((matches, -sims))[:k]
        ranks = len(sims) - np.searchsorted(np.sort(sims), sims[top],
                                            side='left')
        kept = valid[top] if pos is None else pos[valid[top]]
        rows = idx.det_index[kept]
        rankings.append(
            QueryRanking(
                query=q,
                det_index=rows,
                img=det_img[rows],
                boxes=dets[rows, :4],
                scores=dets[rows, 4],
                sims=sims[top],
                ranks=ranks.astype(np.int64),
                matches=matches[top],
                num_gt=int(num_gt)))
    return rankings


def evaluate_person_search(protocol: PersonSearchProtocol,
                           det_img: np.ndarray,
                           dets: np.ndarray,
                           det_feats: np.ndarray,
                           query_feats: np.ndarray,
                           det_thresh: float = 0.5,
                           cross_camera: Union[bool, str] = False,
                           topk: Sequence[int] = (1, 5, 10),
                           protocols: Sequence[str] = ('gt_box', ),
                           query_det_thresh: float = 0.05,
                           cbgm: Optional[CBGM] = None) -> Dict[str, float]:
    """Search and detection metrics in one dict (the metric's and tool's).

    Args:
        protocol (PersonSearchProtocol): The test split.
        det_img (np.ndarray): (M, ) gallery index of every detection.
        dets (np.ndarray): (M, 5) x1, y1, x2, y2, score (original pixels).
        det_feats (np.ndarray): (M, D) detection features.
        query_feats (np.ndarray): (Q, D) query features, in protocol order.
        det_thresh (float): Minimum detection score. Defaults to 0.5.
        cross_camera (bool | str): Search over other cameras only (True),
            over all (False), or both (``'both'``: the cross-camera figures get
            the suffix ``_cross_cam``). Defaults to False.
        topk (Sequence[int]): Top-k ranks. Defaults to (1, 5, 10).
        protocols (Sequence[str]): Search protocols to report
            (:mod:`~mmps.evaluation.functional.search_protocols`):
            ``'gt_box'`` (the field's, no suffix) and/or ``'best_iou_det'``
            (the DICL authors' PRW protocol, suffix ``_ref``).
            Defaults to ``('gt_box', )``.
        query_det_thresh (float): Candidate detections of a query frame under
            ``'best_iou_det'`` score above it. Defaults to 0.05.
        cbgm (CBGM, optional): Also report the search figures re-scored by
            CBGM (:mod:`.cbgm`), under ``'gt_box'`` (SeqNet's) whatever
            ``protocols``, with the suffix ``_cbgm`` (``mAP_cbgm``,
            ``top-1_cross_cam_cbgm``...). Defaults to None.

    Returns:
        dict[str, float]: ``mAP``, ``top-<k>`` (per protocol),
        ``det_recall``, ``det_ap``, ``det_recall_labeled``,
        ``det_ap_labeled`` (fractions).
    """
    if cross_camera not in (True, False, 'both'):
        raise ValueError("cross_camera must be True, False or 'both', got "
                         f'{cross_camera!r}')
    protocols = check_search_protocols(protocols)
    out = {}
    modes = [(False, ''), (True, '_cross_cam')] if cross_camera == 'both' \
        else [(bool(cross_camera), '')]
    names = list(protocols)
    if cbgm is not None and 'gt_box' not in names:
        names.append('gt_box')  # for CBGM only
    for name in names:
        gal_feats, q_feats = protocol_features(name, protocol, det_img, dets,
                                               det_feats, query_feats,
                                               query_det_thresh)
        with_cbgm = cbgm if name == 'gt_box' else None
        tags = [SEARCH_PROTOCOLS[name]] if name in protocols else []
        tags += ['_cbgm'] if with_cbgm is not None else []
        for cross, suffix in modes:
            runs = _eval_search(protocol, det_img, dets, gal_feats, q_feats,
                                det_thresh, cross, topk, with_cbgm,
                                plain=name in protocols)
            for tag, res in zip(tags, runs):
                for key in ['mAP'] + [f'top-{k}' for k in topk]:
                    out[key + suffix + tag] = res[key]
    for labeled, suffix in ((False, ''), (True, '_labeled')):
        det = eval_detection(protocol, det_img, dets, det_thresh=det_thresh,
                             labeled_only=labeled)
        out['det_recall' + suffix] = det['recall']
        out['det_ap' + suffix] = det['ap']
    return out


__all__ = [
    'QueryRanking', 'eval_search', 'rank_search', 'evaluate_person_search'
]

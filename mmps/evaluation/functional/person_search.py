# Copyright (c) OpenMMLab. All rights reserved.
"""Person search evaluation: the field's protocol, vectorised.

The numbers are those of the common ``eval_func.py`` of SeqNet / NAE / COAT
(``eval_search_cuhk``, ``eval_search_prw``, ``eval_detection``), computed
without a Python loop over gallery images:

* Search, per query (identity ``p``, own image ``i_q``, camera ``c_q``): the
  gallery ``G_q`` is the query's list (CUHK-SYSU ``TestG<S>``) or every gallery
  image but ``i_q`` (PRW, CUHK-SYSU full set); the cross-camera variant also
  drops the images of camera ``c_q``. Only detections with score
  ``>= det_thresh`` count; the similarity is the dot product of the features.
  In every image of ``G_q`` that contains ``p`` (its first box with identity
  ``p`` is the target), the most similar detection with
  ``IoU >= min(0.5, w * h / ((w + 10) * (h + 10)))`` is the one true positive;
  every other detection is a negative. ``AP = AP_sklearn * tp / gt`` over the
  kept detections of ``G_q`` (0 without a true positive); top-k is 1 when a
  true positive ranks ``<= k``.
* Detection: recall and AP at IoU 0.5 with one-to-one argmax matching.

Both reduce to counting: with sklearn's grouping of tied scores,
``AP_sklearn * tp / gt = sum over true positives i of
P(s_i) / gt`` where ``P(s) = #TP(score >= s) / #(score >= s)``, so per query
only the true positives' scores and, for each, the number of kept gallery
detections scoring at least as high are needed (no sort of the gallery).
"""
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

#: Gallery lists covering more than this fraction of the detections are
#: scored with one dense matrix product per chunk of queries; smaller ones
#: with a product over the gathered gallery features of each query.
DENSE_GALLERY_FRACTION = 0.125
#: Elements of the dense similarity block computed at once.
_DENSE_BLOCK = 1 << 24


@dataclass
class PersonSearchProtocol:
    """The test split of a person search dataset as flat arrays.

    ``G`` gallery images, ``N`` ground-truth boxes, ``Q`` queries. Gallery
    images are indexed ``0 .. G - 1`` in ``img_id`` order, queries
    ``0 .. Q - 1`` in ``query_id`` order (the order of ``query_feats``).

    Args:
        img_names (np.ndarray): (G, ) str, gallery image names.
        img_cams (np.ndarray): (G, ) int64, gallery camera ids.
        gt_offsets (np.ndarray): (G + 1, ) int64, the boxes of image ``g`` are
            ``gt_offsets[g]:gt_offsets[g + 1]`` of the arrays below.
        gt_boxes (np.ndarray): (N, 4) float64, x1, y1, x2, y2 in pixels of the
            original image.
        gt_pids (np.ndarray): (N, ) int64, identities, -1 when unlabeled.
        query_pids (np.ndarray): (Q, ) int64, query identities.
        query_cams (np.ndarray): (Q, ) int64, query camera ids.
        query_img (np.ndarray): (Q, ) int64, gallery index of each query's own
            image, -1 when it is not a gallery image.
        query_boxes (np.ndarray): (Q, 4) float64, query boxes (for reference;
            the evaluation does not read them).
        gallery_offsets (np.ndarray, optional): (Q + 1, ) int64, the gallery of
            query ``q`` is ``gallery_ids[gallery_offsets[q]:gallery_offsets[q +
            1]]`` (CUHK-SYSU ``TestG<S>``). None: every gallery image but the
            query's own.
        gallery_ids (np.ndarray, optional): flat int64 gallery indices, no
            repeats within a query's list; None with ``gallery_offsets``.
    """

    img_names: np.ndarray
    img_cams: np.ndarray
    gt_offsets: np.ndarray
    gt_boxes: np.ndarray
    gt_pids: np.ndarray
    query_pids: np.ndarray
    query_cams: np.ndarray
    query_img: np.ndarray
    query_boxes: np.ndarray
    gallery_offsets: Optional[np.ndarray] = None
    gallery_ids: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.img_names = np.asarray(self.img_names, dtype=str).reshape(-1)
        for name in ('img_cams', 'gt_offsets', 'gt_pids', 'query_pids',
                     'query_cams', 'query_img'):
            setattr(self, name,
                    np.asarray(getattr(self, name), np.int64).reshape(-1))
        self.gt_boxes = np.asarray(self.gt_boxes, np.float64).reshape(-1, 4)
        self.query_boxes = np.asarray(self.query_boxes,
                                      np.float64).reshape(-1, 4)
        G, Q = len(self.img_names), len(self.query_pids)
        _expect(len(self.img_cams) == G, 'img_cams', (G, ), self.img_cams)
        _expect(len(self.gt_offsets) == G + 1, 'gt_offsets', (G + 1, ),
                self.gt_offsets)
        N = int(self.gt_offsets[-1])
        _expect(self.gt_offsets[0] == 0 and np.all(np.diff(self.gt_offsets)
                                                   >= 0),
                'gt_offsets', 'non-decreasing from 0', self.gt_offsets)
        _expect(len(self.gt_boxes) == N, 'gt_boxes', (N, 4), self.gt_boxes)
        _expect(len(self.gt_pids) == N, 'gt_pids', (N, ), self.gt_pids)
        for name in ('query_cams', 'query_img', 'query_boxes'):
            _expect(len(getattr(self, name)) == Q, name, (Q, ),
                    getattr(self, name))
        _expect(np.all((self.query_img >= -1) & (self.query_img < G)),
                'query_img', f'values in [-1, {G})', self.query_img)
        if (self.gallery_offsets is None) != (self.gallery_ids is None):
            raise ValueError('PersonSearchProtocol: gallery_offsets and '
                             'gallery_ids must both be given or both be None')
        if self.gallery_offsets is not None:
            self.gallery_offsets = np.asarray(self.gallery_offsets,
                                              np.int64).reshape(-1)
            self.gallery_ids = np.asarray(self.gallery_ids,
                                          np.int64).reshape(-1)
            off = self.gallery_offsets
            _expect(
                len(off) == Q + 1 and off[0] == 0
                and np.all(np.diff(off) >= 0)
                and off[-1] == len(self.gallery_ids), 'gallery_offsets',
                f'({Q + 1}, ) non-decreasing from 0 to len(gallery_ids)', off)
            _expect(
                np.all((self.gallery_ids >= 0) & (self.gallery_ids < G)),
                'gallery_ids', f'values in [0, {G})', self.gallery_ids)
            for q in range(Q):
                gal = self.gallery_ids[off[q]:off[q + 1]]
                if len(gal) > 1 and np.bincount(gal).max() > 1:
                    raise ValueError(f'PersonSearchProtocol: the gallery of '
                                     f'query {q} lists an image more than '
                                     'once')

    @property
    def num_images(self) -> int:
        """Number of gallery images."""
        return len(self.img_names)

    @property
    def num_queries(self) -> int:
        """Number of queries."""
        return len(self.query_pids)

    @property
    def img_of_gt(self) -> np.ndarray:
        """(N, ) gallery index of every ground-truth box."""
        return np.repeat(
            np.arange(self.num_images), np.diff(self.gt_offsets))

    def gallery(self, q: int) -> Optional[np.ndarray]:
        """Gallery indices listed for query ``q`` (None: all but its own)."""
        if self.gallery_offsets is None:
            return None
        return self.gallery_ids[
            self.gallery_offsets[q]:self.gallery_offsets[q + 1]]

    def __eq__(self, other) -> bool:
        if not isinstance(other, PersonSearchProtocol):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if (a is None) != (b is None):
                return False
            if a is not None and not np.array_equal(a, b):
                return False
        return True

    @classmethod
    def from_data_infos(cls, data_infos: Sequence[dict]
                        ) -> 'PersonSearchProtocol':
        """Build the protocol from the test-split entries of a dataset.

        See :class:`mmps.datasets.BasePersonSearchDataset`: gallery entries
        (``is_query`` False) carry ``img_id``, ``img_name``, ``cam_id`` and
        ``instances`` (``bbox`` x1, y1, x2, y2, ``person_id``); query entries
        ``query_id``, ``cam_id``, ``query_img_index``, ``gallery_img_ids``
        (gallery indices, i.e. the ``img_id`` of gallery entries, or None) and
        the query box as the only instance. Entries may come in any order.

        Args:
            data_infos (Sequence[dict]): Test-split entries.

        Returns:
            PersonSearchProtocol: The protocol.
        """
        gallery = sorted((d for d in data_infos if not d.get('is_query')),
                         key=lambda d: d['img_id'])
        queries = sorted((d for d in data_infos if d.get('is_query')),
                         key=lambda d: d['query_id'])
        g_ids = np.array([d['img_id'] for d in gallery], np.int64)
        if np.any(np.diff(g_ids) == 0):
            raise ValueError('from_data_infos: gallery entries repeat an '
                             'img_id')
        qids = [d['query_id'] for d in queries]
        if len(set(qids)) != len(qids):
            raise ValueError('from_data_infos: query entries repeat a '
                             'query_id')

        def positions(ids, where):
            """Gallery img_ids -> gallery indices (an error if unknown)."""
            ids = np.asarray(ids, np.int64).reshape(-1)
            p = np.searchsorted(g_ids, ids)
            bad = p >= len(g_ids)
            bad[~bad] = g_ids[p[~bad]] != ids[~bad]
            if bad.any():
                raise ValueError(f'{where} {ids[bad][:5].tolist()} are not '
                                 'gallery img_ids of these entries')
            return p

        inst = [i for d in gallery for i in d['instances']]
        gt_boxes = np.array([i['bbox'] for i in inst],
                            np.float64).reshape(-1, 4)
        gt_pids = np.array([i.get('person_id', -1) for i in inst], np.int64)
        num_gt = [len(d['instances']) for d in gallery]

        q_img, q_boxes, q_pids, lists = [], [], [], []
        for d in queries:
            where = f'from_data_infos: query {d["query_id"]}'
            if len(d['instances']) < 1:
                raise ValueError(f'{where} has no instance (the query box)')
            q_boxes.append(d['instances'][0]['bbox'])
            q_pids.append(d['instances'][0].get('person_id', -1))
            own = d.get('query_img_index', -1)
            own = -1 if own is None or own < 0 else own
            q_img.append(
                positions([own], f'{where}: query_img_index')[0]
                if own >= 0 else -1)
            ids = d.get('gallery_img_ids')
            if ids is not None:
                ids = positions(ids, f'{where}: gallery_img_ids')
                if len(ids) > 1 and np.bincount(ids).max() > 1:
                    # keep the first occurrence of a repeated image
                    _, first = np.unique(ids, return_index=True)
                    ids = ids[np.sort(first)]
            lists.append(ids)
        has_list = [x is not None for x in lists]
        if any(has_list) and not all(has_list):
            raise ValueError('from_data_infos: some queries list their '
                             'gallery (gallery_img_ids) and others do not')
        offsets = ids = None
        if lists and all(has_list):
            offsets = np.concatenate(
                [[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
            ids = np.concatenate(lists).astype(np.int64)

        return cls(
            img_names=np.array(
                [d.get('img_name', str(d['img_id'])) for d in gallery],
                dtype=str),
            img_cams=np.array([d.get('cam_id', 0) for d in gallery],
                              np.int64),
            gt_offsets=np.concatenate([[0], np.cumsum(num_gt,
                                                      dtype=np.int64)]),
            gt_boxes=gt_boxes,
            gt_pids=gt_pids,
            query_pids=np.array(q_pids, np.int64),
            query_cams=np.array([d.get('cam_id', 0) for d in queries],
                                np.int64),
            query_img=np.array(q_img, np.int64),
            query_boxes=np.array(q_boxes, np.float64).reshape(-1, 4),
            gallery_offsets=offsets,
            gallery_ids=ids)


def _expect(ok, name: str, what, value) -> None:
    if not ok:
        shape = getattr(value, 'shape', None)
        raise ValueError(f'PersonSearchProtocol: {name} must be {what}, got '
                         f'shape {shape}')


# -- small vectorised helpers -------------------------------------------------
def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n)."""
    lens = np.asarray(lens, np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lens)
    shift = np.repeat(np.asarray(starts, np.int64) - (ends - lens), lens)
    return np.arange(total, dtype=np.int64) + shift


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of the boxes ``a[i]`` and ``b[i]`` (x1, y1, x2, y2, no +1).

    Args:
        a (np.ndarray): (n, 4) boxes.
        b (np.ndarray): (n, 4) boxes.

    Returns:
        np.ndarray: (n, ) float64 IoUs, as the field's ``_compute_iou``.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    iw = np.maximum(0., np.minimum(a[:, 2], b[:, 2]) -
                    np.maximum(a[:, 0], b[:, 0]))
    ih = np.maximum(0., np.minimum(a[:, 3], b[:, 3]) -
                    np.maximum(a[:, 1], b[:, 1]))
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + \
        (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        return inter / union


def search_iou_thresholds(gt_boxes: np.ndarray) -> np.ndarray:
    """``min(0.5, w * h / ((w + 10) * (h + 10)))`` per ground-truth box.

    Small people get a looser threshold (the field's rule).

    Args:
        gt_boxes (np.ndarray): (n, 4) x1, y1, x2, y2.

    Returns:
        np.ndarray: (n, ) float64 thresholds.
    """
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    w = gt_boxes[:, 2] - gt_boxes[:, 0]
    h = gt_boxes[:, 3] - gt_boxes[:, 1]
    return np.minimum(0.5, w * h / ((w + 10) * (h + 10)))


def _first_argmax(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mask of the first maximum of ``values`` within each run of ``groups``.

    ``groups`` must be sorted (runs contiguous); ``np.argmax`` semantics.
    """
    n = len(values)
    out = np.zeros(n, bool)
    if n == 0:
        return out
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lens = np.diff(np.r_[starts, n])
    top = np.repeat(np.maximum.reduceat(values, starts), lens)
    cand = np.flatnonzero(values == top)
    g = groups[cand]
    out[cand[np.r_[True, g[1:] != g[:-1]]]] = True
    return out


def _ap_from_counts(tp_ge: np.ndarray, n_ge: np.ndarray,
                    num_gt: int) -> float:
    """``sum(tp_ge / n_ge) / num_gt``: sklearn's AP times the recall."""
    if num_gt == 0 or len(tp_ge) == 0:
        return 0.0
    return float(np.sum(tp_ge / n_ge) / num_gt)


def _check_dets(protocol: PersonSearchProtocol, det_img, dets,
                det_feats=None) -> tuple:
    det_img = np.asarray(det_img, np.int64).reshape(-1)
    dets = np.asarray(dets)
    if dets.size == 0:
        dets = dets.reshape(0, 5)
    if dets.ndim != 2 or dets.shape[1] != 5 or len(dets) != len(det_img):
        raise ValueError(
            f'dets must be ({len(det_img)}, 5) [x1, y1, x2, y2, score] '
            f'(one row per det_img entry), got shape {dets.shape}')
    if len(det_img) and (det_img.min() < 0
                         or det_img.max() >= protocol.num_images):
        raise ValueError(f'det_img must index the {protocol.num_images} '
                         'gallery images of the protocol')
    _check_finite(dets, 'dets')
    if det_feats is not None:
        det_feats = np.asarray(det_feats)
        if det_feats.ndim != 2 or len(det_feats) != len(det_img):
            raise ValueError(f'det_feats must be ({len(det_img)}, D), got '
                             f'shape {det_feats.shape}')
        _check_finite(det_feats, 'det_feats')
    return det_img, dets, det_feats


def _check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if a row of a 2-d array holds a NaN or an Inf (a diverged model
    would otherwise be ranked silently)."""
    if arr.size and arr.dtype.kind in 'fc':
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(bad):
            raise ValueError(f'{name} has {len(bad)} row(s) with NaN or Inf '
                             f'values, e.g. row(s) {bad[:5].tolist()}')


# -- detection ----------------------------------------------------------------
def eval_detection(protocol: PersonSearchProtocol,
                   det_img: np.ndarray,
                   dets: np.ndarray,
                   det_thresh: float = 0.5,
                   iou_thresh: float = 0.5,
                   labeled_only: bool = False) -> Dict[str, float]:
    """Detection recall and AP over the gallery (SeqNet's ``eval_detection``).

    Per gallery image, the detections scoring ``>= det_thresh`` are matched to
    the ground truth: IoU (stored as float32, as the reference does)
    ``>= iou_thresh`` and, for each detection, only its highest-IoU box and,
    for each box, only its highest-IoU detection (``np.argmax``: first index
    on ties). ``recall = matched boxes / boxes``;
    ``ap = average_precision_score(matched, score) * recall`` over all kept
    detections. Detections of images without boxes are negatives (the
    reference cannot evaluate such images).

    Args:
        protocol (PersonSearchProtocol): The test split.
        det_img (np.ndarray): (M, ) gallery index of every detection.
        dets (np.ndarray): (M, 5) x1, y1, x2, y2, score (original pixels).
            Within an image the order decides argmax ties.
        det_thresh (float): Minimum detection score. Defaults to 0.5.
        iou_thresh (float): IoU of a match. Defaults to 0.5.
        labeled_only (bool): Only boxes of labeled people (``person_id >=
            0``); images without any are skipped with their detections.
            Defaults to False.

    Returns:
        dict: ``recall`` and ``ap`` (floats; 0 without boxes or matches),
        ``num_gt``, ``num_tp`` and ``num_det`` (ints).
    """
    det_img, dets, _ = _check_dets(protocol, det_img, dets)
    G = protocol.num_images
    gt_img = protocol.img_of_gt
    gt_keep = protocol.gt_pids >= 0 if labeled_only else \
        np.ones(len(gt_img), bool)
    gt_idx = np.flatnonzero(gt_keep)
    n_gt_img = np.bincount(gt_img[gt_idx], minlength=G)
    gt_off = np.concatenate([[0], np.cumsum(n_gt_img)])
    img_used = n_gt_img > 0 if labeled_only else np.ones(G, bool)

    keep = np.flatnonzero((dets[:, 4] >= det_thresh) & img_used[det_img])
    order = keep[np.argsort(det_img[keep], kind='stable')]
    d_img, d_box, scores = det_img[order], dets[order, :4], dets[order, 4]

    # every (det, gt) pair of the same image, grouped by det then by gt
    lens = n_gt_img[d_img]
    p_det = np.repeat(np.arange(len(order)), lens)
    p_gt = gt_idx[_ranges(gt_off[d_img], lens)]
    iou = pairwise_iou(d_box[p_det], protocol.gt_boxes[p_gt]).astype(
        np.float32)
    tf = iou >= iou_thresh
    tf &= _first_argmax(p_det, iou)
    by_gt = np.lexsort((p_det, p_gt))
    tf[by_gt] &= _first_argmax(p_gt[by_gt], iou[by_gt])

    y_true = np.zeros(len(order), bool)
    y_true[p_det[tf]] = True
    num_gt = int(len(gt_idx))
    num_tp = int(tf.sum())
    recall = num_tp / num_gt if num_gt else 0.0
    s_all = np.sort(scores)
    s_tp = np.sort(scores[y_true])
    n_ge = len(s_all) - np.searchsorted(s_all, s_tp, side='left')
    tp_ge = len(s_tp) - np.searchsorted(s_tp, s_tp, side='left')
    ap = _ap_from_counts(tp_ge, n_ge, num_gt) if num_tp else 0.0
    return dict(recall=float(recall), ap=ap, num_gt=num_gt, num_tp=num_tp,
                num_det=int(len(order)))


# -- search -------------------------------------------------------------------
class _SearchIndex:
    """What every query reads: kept detections by image, target boxes and the
    detections that pass the IoU rule of each target."""

    def __init__(self, protocol: PersonSearchProtocol, det_img: np.ndarray,
                 dets: np.ndarray, det_feats: np.ndarray,
                 det_thresh: float) -> None:
        G = protocol.num_images
        keep = np.flatnonzero(dets[:, 4] >= det_thresh)
        order = keep[np.argsort(det_img[keep], kind='stable')]
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
        p_gt = tgt[_ranges(t_off[self.d_img], lens)]
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


def eval_search(protocol: PersonSearchProtocol,
                det_img: np.ndarray,
                dets: np.ndarray,
                det_feats: np.ndarray,
                query_feats: np.ndarray,
                det_thresh: float = 0.5,
                cross_camera: bool = False,
                topk: Sequence[int] = (1, 5, 10)) -> dict:
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

    Returns:
        dict: ``mAP`` and ``top-<k>`` (floats, 0 without queries), per query
        ``aps`` (Q, ) float64, ``hits`` (Q, len(topk)) bool, ``count_gt`` and
        ``count_tp`` (Q, ) int64.
    """
    det_img, dets, det_feats = _check_dets(protocol, det_img, dets, det_feats)
    Q, G = protocol.num_queries, protocol.num_images
    query_feats = np.asarray(query_feats)
    if query_feats.size == 0 and Q == 0:
        query_feats = query_feats.reshape(0, det_feats.shape[1])
    if query_feats.ndim != 2 or len(query_feats) != Q:
        raise ValueError(f'query_feats must be ({Q}, D) (one row per query of '
                         f'the protocol), got shape {query_feats.shape}')
    if len(det_feats) and query_feats.shape[1] != det_feats.shape[1]:
        raise ValueError(f'query_feats have {query_feats.shape[1]} dims, '
                         f'det_feats {det_feats.shape[1]}')
    _check_finite(query_feats, 'query_feats')
    dtype = np.result_type(det_feats.dtype, query_feats.dtype, np.float32)
    det_feats = det_feats.astype(dtype, copy=False)
    query_feats = query_feats.astype(dtype, copy=False)
    topk = tuple(int(k) for k in topk)

    idx = _SearchIndex(protocol, det_img, dets, det_feats, det_thresh)
    M, d_off = idx.num_dets, idx.d_off
    d_lens = np.diff(d_off)
    lists = protocol.gallery_offsets is not None
    if lists:
        mean = d_lens[protocol.gallery_ids].sum() / max(Q, 1)
        dense = mean > DENSE_GALLERY_FRACTION * M
    else:
        dense = True
        if cross_camera:
            d_cam = protocol.img_cams[idx.d_img]
            cams = np.unique(d_cam)
            cam_dets = {int(c): np.flatnonzero(d_cam == c) for c in cams}
    mark = np.zeros(G, bool)
    img_pos = np.zeros(G, np.int64)

    aps = np.zeros(Q)
    best = np.full(Q, np.iinfo(np.int64).max)
    count_gt = np.zeros(Q, np.int64)
    count_tp = np.zeros(Q, np.int64)
    chunk = max(1, _DENSE_BLOCK // max(M, 1)) if dense else max(Q, 1)
    for c0 in range(0, Q, chunk):
        block = query_feats[c0:c0 + chunk] @ idx.d_feat.T if dense else None
        for q in range(c0, min(c0 + chunk, Q)):
            qi, qc = protocol.query_img[q], protocol.query_cams[q]
            tg = idx.targets(protocol.query_pids[q])
            tg_img = idx.gt_img[tg]
            if lists:
                gal = protocol.gallery(q)
                if cross_camera:
                    gal = gal[protocol.img_cams[gal] != qc]
                mark[gal] = True
                tg = tg[mark[tg_img]]
                mark[gal] = False
                if len(tg) == 0:
                    continue
                lens = d_lens[gal]
                pos = _ranges(d_off[gal], lens)
                img_pos[gal] = np.cumsum(lens) - lens - d_off[gal]
                sims = block[q - c0, pos] if dense else \
                    idx.d_feat[pos] @ query_feats[q]
            else:
                sel = tg_img != qi
                if cross_camera:
                    sel &= protocol.img_cams[tg_img] != qc
                tg = tg[sel]
                if len(tg) == 0:
                    continue
                sims = block[q - c0]
                if qi >= 0:
                    sims[d_off[qi]:d_off[qi + 1]] = -np.inf
                if cross_camera and int(qc) in cam_dets:
                    sims[cam_dets[int(qc)]] = -np.inf
            count_gt[q] = len(tg)
            # the most similar passing detection of each target image
            starts = idx.pass_off[tg]
            lens = idx.pass_off[tg + 1] - starts
            found = lens > 0
            if not found.any():
                continue
            starts, lens = starts[found], lens[found]
            cand = idx.pass_det[_ranges(starts, lens)]
            if lists:
                cand = img_pos[idx.d_img[cand]] + cand
            vals = sims[cand]
            tp = np.maximum.reduceat(vals, np.cumsum(lens) - lens)
            count_tp[q] = len(tp)
            tp_ge, n_ge = _rank_counts(sims, tp)
            aps[q] = _ap_from_counts(tp_ge, n_ge, len(tg))
            best[q] = n_ge[-1]
    hits = best[:, None] <= np.array(topk, np.int64)[None, :]
    out = dict(mAP=float(aps.mean()) if Q else 0.0)
    for j, k in enumerate(topk):
        out[f'top-{k}'] = float(hits[:, j].mean()) if Q else 0.0
    out.update(aps=aps, hits=hits, count_gt=count_gt, count_tp=count_tp)
    return out


def evaluate_person_search(protocol: PersonSearchProtocol,
                           det_img: np.ndarray,
                           dets: np.ndarray,
                           det_feats: np.ndarray,
                           query_feats: np.ndarray,
                           det_thresh: float = 0.5,
                           cross_camera: Union[bool, str] = False,
                           topk: Sequence[int] = (1, 5, 10),
                           protocols: Sequence[str] = ('gt_box', ),
                           query_det_thresh: float = 0.05
                           ) -> Dict[str, float]:
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

    Returns:
        dict[str, float]: ``mAP``, ``top-<k>`` (per protocol),
        ``det_recall``, ``det_ap``, ``det_recall_labeled``,
        ``det_ap_labeled`` (fractions).
    """
    # imported here: search_protocols builds on this module
    from .search_protocols import (SEARCH_PROTOCOLS, check_search_protocols,
                                   protocol_features)
    if cross_camera not in (True, False, 'both'):
        raise ValueError("cross_camera must be True, False or 'both', got "
                         f'{cross_camera!r}')
    protocols = check_search_protocols(protocols)
    out = {}
    modes = [(False, ''), (True, '_cross_cam')] if cross_camera == 'both' \
        else [(bool(cross_camera), '')]
    for name in protocols:
        gal_feats, q_feats = protocol_features(name, protocol, det_img, dets,
                                               det_feats, query_feats,
                                               query_det_thresh)
        for cross, suffix in modes:
            res = eval_search(protocol, det_img, dets, gal_feats, q_feats,
                              det_thresh=det_thresh, cross_camera=cross,
                              topk=topk)
            for key in ['mAP'] + [f'top-{k}' for k in topk]:
                out[key + suffix + SEARCH_PROTOCOLS[name]] = res[key]
    for labeled, suffix in ((False, ''), (True, '_labeled')):
        det = eval_detection(protocol, det_img, dets, det_thresh=det_thresh,
                             labeled_only=labeled)
        out['det_recall' + suffix] = det['recall']
        out['det_ap' + suffix] = det['ap']
    return out


__all__: List[str] = [
    'PersonSearchProtocol', 'eval_search', 'eval_detection',
    'evaluate_person_search', 'pairwise_iou', 'search_iou_thresholds'
]

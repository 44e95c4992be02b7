# Copyright (c) OpenMMLab. All rights reserved.
"""Context bipartite graph matching (CBGM): SeqNet's test-time re-scoring.

For each query (SeqNet, Li and Miao, AAAI 2021, ``eval_func.py``,
``cbgm=True``):

1. The gallery detections of the query (the images of its gallery, scores
   ``>= det_thresh``) are scored by the dot product with the query feature,
   as without CBGM; the images holding its ``k1`` most similar detections are
   re-scored (ties at the ``k1``-th similarity: the earlier detections in
   gallery order).
2. The query's *context* is its own box (first) and the other people of its
   frame by decreasing detection score, ``k2`` rows in all. In each re-scored
   image, the context rows are matched to the image's detections by a
   maximum-weight bipartite matching on the dot products of their features
   (``scipy.optimize.linear_sum_assignment``; every row is matched when the
   image has at least as many detections, otherwise every detection).
3. The detection matched to the query box gets the *maximum* similarity
   over all matched pairs; every other similarity is left as it was (also
   in an image where the query box is left unmatched).

The ranks, the match rule (the most similar passing detection of a target
image is its true positive) and the figures are then those of
:func:`~mmps.evaluation.functional.search.eval_search` on the re-scored
similarities.

The context (:class:`QueryContext`) is a flat list of rows: the query it
belongs to, a box with its score, a feature; the first row of a query is its
box. :func:`build_query_context` makes it from the detections of the query's
own frame (a gallery image on PRW and CUHK-SYSU), as SeqNet re-detects the
query image with the query box forced in: the box with score 1 and the query
feature, then the frame's detections scoring ``>= det_thresh`` that overlap
it by ``IoU <= 0.5`` (those above are suppressed by the NMS of the box at
score 1), by decreasing score. A query whose frame is not a gallery image,
or has no other detection, has its box alone as context, which never
changes a similarity.

Where this differs from SeqNet's code, and why:

* The context comes from the detections of the query frame as a gallery
  image, not from a second detection pass with the box forced in: the
  suppression of the detections overlapping the box (IoU > 0.5) is the same,
  but a detection that SeqNet's NMS would let through because the box
  suppressed the one suppressing it cannot be recovered (rare). SeqNet keeps
  the query frame's detections scoring ``> 0.5`` (its test score threshold),
  here ``>= det_thresh``.
* SeqNet's gallery features are score-weighted (its CWS) and its context
  features not; here both are the model's detection features.
* CUHK-SYSU full set (``gallery_size=-1``): SeqNet re-scores only the
  ``TestG50`` part of the gallery (its code leaves the rest as a to-do);
  here the query's whole gallery.
* Ties at the ``k1``-th similarity (SeqNet: ``np.argsort``, unspecified)
  take the earlier detections; between matchings of exactly equal total
  weight scipy's choice may differ from SeqNet's Kuhn-Munkres.

Only numpy is imported here, and ``scipy.optimize`` (0.6 s) when CBGM runs.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .detection import concat_ranges, pairwise_iou
from .protocol import PersonSearchProtocol, check_finite

#: SeqNet's ``(k1, k2)`` per dataset: re-scored gallery detections, context
#: rows (the query box included).
CBGM_DEFAULTS: Dict[str, Tuple[int, int]] = {
    'cuhk-sysu': (10, 3),
    'prw': (30, 4)
}
#: A detection of the query frame overlapping the query box by more than
#: this IoU is the query person itself, not context (SeqNet's NMS threshold).
CONTEXT_IOU_THRESH = 0.5

#: ``rescore(q, sims, det_rows) -> sims``: the hook of the search loop.
Rescorer = Callable[[int, np.ndarray, Optional[np.ndarray]], np.ndarray]


@dataclass
class QueryContext:
    """The context of every query, as flat rows.

    Args:
        query (np.ndarray): (K, ) int64, the query of each row (its row of
            ``query_feats``).
        dets (np.ndarray): (K, 5) x1, y1, x2, y2, score (original pixels);
            the first row of each query (in row order) is the query box.
        feats (np.ndarray): (K, D) features.
    """

    query: np.ndarray
    dets: np.ndarray
    feats: np.ndarray

    def __post_init__(self) -> None:
        self.query = np.asarray(self.query).reshape(-1)
        if self.query.size and self.query.dtype.kind not in 'iu':
            raise ValueError('QueryContext: query must hold ints, got '
                             f'{self.query.dtype}')
        self.query = self.query.astype(np.int64)
        K = len(self.query)
        self.dets = np.asarray(self.dets)
        if self.dets.size == 0:
            self.dets = self.dets.reshape(0, 5)
        if self.dets.shape != (K, 5):
            raise ValueError(f'QueryContext: dets must be ({K}, 5) [x1, y1, '
                             f'x2, y2, score], got shape {self.dets.shape}')
        self.feats = np.asarray(self.feats)
        if self.feats.ndim != 2 or len(self.feats) != K:
            raise ValueError(f'QueryContext: feats must be ({K}, D), got '
                             f'shape {self.feats.shape}')
        check_finite(self.dets, 'QueryContext dets')
        check_finite(self.feats, 'QueryContext feats')

    def check(self, num_queries: int, dim: int) -> None:
        """Raise a ValueError if the rows do not fit ``num_queries`` queries
        with ``dim``-d features."""
        if len(self.query) and (self.query.min() < 0
                                or self.query.max() >= num_queries):
            raise ValueError(f'QueryContext: query must index the '
                             f'{num_queries} queries, got values in '
                             f'[{self.query.min()}, {self.query.max()}]')
        if len(self.query) and self.feats.shape[1] != dim:
            raise ValueError(f'QueryContext: feats have {self.feats.shape[1]}'
                             f' dims, the query features {dim}')


def build_query_context(protocol: PersonSearchProtocol,
                        det_img: np.ndarray,
                        dets: np.ndarray,
                        det_feats: np.ndarray,
                        query_feats: np.ndarray,
                        det_thresh: float = 0.5,
                        iou_thresh: float = CONTEXT_IOU_THRESH
                        ) -> QueryContext:
    """The context of every query from the detections of its own frame.

    Rows of query ``q``: its box (``protocol.query_boxes[q]``, score 1,
    ``query_feats[q]``), then the detections of its frame
    (``protocol.query_img[q]``) scoring ``>= det_thresh`` whose IoU with the
    box is ``<= iou_thresh``, by decreasing score (stable). Queries whose
    frame is not a gallery image have their box alone.

    Args:
        protocol (PersonSearchProtocol): The test split.
        det_img (np.ndarray): (M, ) gallery index of every detection.
        dets (np.ndarray): (M, 5) x1, y1, x2, y2, score (original pixels).
        det_feats (np.ndarray): (M, D) detection features.
        query_feats (np.ndarray): (Q, D) query features.
        det_thresh (float): Minimum score of a context detection.
            Defaults to 0.5.
        iou_thresh (float): Detections overlapping the query box more are
            the query person. Defaults to 0.5.

    Returns:
        QueryContext: ``Q`` query rows and the context detections, grouped
        by query.
    """
    det_img = np.asarray(det_img, np.int64).reshape(-1)
    dets = np.asarray(dets).reshape(-1, 5)
    det_feats = np.asarray(det_feats)
    query_feats = np.asarray(query_feats)
    Q = protocol.num_queries
    # kept detections by image, best first
    keep = np.flatnonzero(dets[:, 4] >= det_thresh)
    order = keep[np.lexsort((-dets[keep, 4], det_img[keep]))]
    off = np.searchsorted(det_img[order], np.arange(protocol.num_images + 1))
    img = protocol.query_img
    own = np.flatnonzero(img >= 0)
    lens = off[img[own] + 1] - off[img[own]]
    rows = order[concat_ranges(off[img[own]], lens)]
    row_q = np.repeat(own, lens)
    ok = pairwise_iou(dets[rows, :4],
                      protocol.query_boxes[row_q]) <= iou_thresh
    rows, row_q = rows[ok], row_q[ok]
    # query rows first, then each query's context (already best first)
    q_all = np.concatenate([np.arange(Q), row_q])
    at = np.argsort(q_all, kind='stable')
    dtype = np.result_type(dets.dtype, np.float32)
    box_rows = np.concatenate(
        [protocol.query_boxes, np.ones((Q, 1))], axis=1).astype(dtype)
    q_feats = query_feats.reshape(Q, -1) if Q else np.zeros(
        (0, det_feats.shape[1]))
    feats = np.concatenate(
        [q_feats.astype(det_feats.dtype, copy=False), det_feats[rows]])
    return QueryContext(
        query=q_all[at],
        dets=np.concatenate([box_rows, dets[rows].astype(dtype)])[at],
        feats=feats[at])


def context_match(sim: np.ndarray) -> Tuple[int, float]:
    """Match the context rows to the detections of one image.

    The rule of step 2 and 3 for one image (:meth:`CBGM.rescorer` applies it
    to all the re-scored images of a query at once).

    Args:
        sim (np.ndarray): (k, n) similarities of the context rows (row 0: the
            query box) to the image's detections, ``k, n >= 1``.

    Returns:
        tuple[int, float]: The detection matched to the query box (-1 if it
        is left unmatched, ``n < k``) and the maximum similarity over the
        pairs of a maximum-weight matching.
    """
    from scipy.optimize import linear_sum_assignment
    rows, cols = linear_sum_assignment(sim, maximize=True)
    best = float(sim[rows, cols].max())
    # rows come sorted: row 0 is matched iff it comes first
    return (int(cols[0]) if rows[0] == 0 else -1), best


class CBGM:
    """SeqNet's CBGM (see the module) on a given context.

    Args:
        context (QueryContext): The context of the queries.
        k1 (int): Gallery detections of a query whose images are re-scored.
            Defaults to 10 (CUHK-SYSU; PRW: 30, see :data:`CBGM_DEFAULTS`).
        k2 (int): Context rows used, the query box included. Defaults to 3
            (CUHK-SYSU; PRW: 4).
    """

    def __init__(self, context: QueryContext, k1: int = 10,
                 k2: int = 3) -> None:
        if int(k1) < 1 or int(k2) < 1:
            raise ValueError(f'CBGM: k1 and k2 must be >= 1, got k1={k1}, '
                             f'k2={k2}')
        self.context = context
        self.k1 = int(k1)
        self.k2 = int(k2)

    @classmethod
    def for_protocol(cls, context: QueryContext,
                     protocol: PersonSearchProtocol,
                     k1: Optional[int] = None,
                     k2: Optional[int] = None) -> 'CBGM':
        """CBGM with SeqNet's ``k1`` / ``k2`` of the protocol's dataset
        (:func:`cbgm_dataset`) where not given."""
        d1, d2 = CBGM_DEFAULTS[cbgm_dataset(protocol)]
        return cls(context, d1 if k1 is None else k1, d2 if k2 is None else k2)

    def rows(self, det_thresh: float) -> Tuple[np.ndarray, np.ndarray]:
        """The context rows in use, grouped by query.

        Per query: its first row (the box), then its other rows scoring
        ``>= det_thresh`` by decreasing score (stable), ``k2`` in all.

        Args:
            det_thresh (float): Minimum score of a context detection.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``index`` (K', ) rows of the
            context and ``query`` (K', ) their queries, sorted by query.
        """
        ctx = self.context
        by_q = np.argsort(ctx.query, kind='stable')
        q = ctx.query[by_q]
        first = np.r_[True, q[1:] != q[:-1]] if len(q) else q.astype(bool)
        score = ctx.dets[by_q, 4]
        keep = first | (score >= det_thresh)
        by_q, q, first, score = by_q[keep], q[keep], first[keep], score[keep]
        at = np.lexsort((-score, ~first, q))
        by_q, q = by_q[at], q[at]
        start = np.searchsorted(q, q)
        use = np.arange(len(q)) - start < self.k2
        return by_q[use], q[use]

    def rescorer(self, num_queries: int, d_img: np.ndarray,
                 d_off: np.ndarray, d_feat: np.ndarray,
                 det_thresh: float) -> Rescorer:
        """The hook of the search loop on its kept detections.

        Args:
            num_queries (int): Queries of the protocol.
            d_img (np.ndarray): (M', ) gallery index of each kept detection,
                sorted.
            d_off (np.ndarray): (G + 1, ) the kept detections of image ``g``
                are ``d_off[g]:d_off[g + 1]``.
            d_feat (np.ndarray): (M', D) their features.
            det_thresh (float): Minimum score of a context detection.

        Returns:
            Rescorer: ``rescore(q, sims, det_rows)``: ``sims`` (n, ) are the
            similarities of query ``q`` to gallery entries (``-inf``: not in
            its gallery), entry ``i`` being kept detection ``det_rows[i]``
            (None: ``i``), the entries of an image contiguous and in kept
            order; returns the re-scored similarities (a new array when one
            changes).
        """
        self.context.check(num_queries, d_feat.shape[1] if d_feat.ndim == 2
                           else 0)
        index, query = self.rows(det_thresh)
        feats = self.context.feats[index].astype(d_feat.dtype, copy=False)
        q_off = np.searchsorted(query, np.arange(num_queries + 1))
        k1 = self.k1
        from scipy.optimize import linear_sum_assignment as lsa

        def rescore(q: int, sims: np.ndarray,
                    det_rows: Optional[np.ndarray]) -> np.ndarray:
            lo, hi = q_off[q], q_off[q + 1]
            n = len(sims)
            if hi - lo < 2 or n == 0:  # the query box alone changes nothing
                return sims
            top = _top_entries(sims, k1)
            if len(top) == 0:
                return sims
            rows = top if det_rows is None else det_rows[top]
            imgs, first = np.unique(d_img[rows], return_index=True)
            start = d_off[imgs]
            lens = d_off[imgs + 1] - start
            # the entry of each image's first detection
            entry0 = top[first] - (rows[first] - start)
            sim = feats[lo:hi] @ d_feat[concat_ranges(start, lens)].T
            ends = np.cumsum(lens)
            matched_rows, matched_cols = [], []
            for a, b in zip((ends - lens).tolist(), ends.tolist()):
                r, c = lsa(sim[:, a:b], maximize=True)
                matched_rows.append(r)
                matched_cols.append(c)
            # per image, its min(k, n) pairs; rows come sorted: the query
            # box is matched iff the first row is row 0
            pairs = np.minimum(hi - lo, lens)
            first = np.cumsum(pairs) - pairs
            r = np.concatenate(matched_rows)
            c = np.concatenate(matched_cols)
            # the maximum similarity over the matched pairs of each image
            best = np.maximum.reduceat(
                sim[r, c + np.repeat(ends - lens, pairs)], first)
            ok = r[first] == 0
            out = sims.copy()
            out[entry0[ok] + c[first[ok]]] = best[ok]
            return out

        return rescore


def _top_entries(sims: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest finite entries of ``sims`` (ties at the ``k``-th
    value: the earlier entries), in no particular order.

    On a long array the candidates are first narrowed to the entries at
    least as large as the ``k``-th largest of a strided subset (there are
    ``>= k`` of them, so the top ``k`` are among them).
    """
    n = len(sims)
    if k >= n:
        top = np.arange(n)
    else:
        step = n // (64 * k)
        cand = None
        if step > 1:
            sub = np.partition(sims[::step], len(sims[::step]) - k)
            cand = np.flatnonzero(sims >= sub[-k])
        vals = sims if cand is None else sims[cand]
        t = np.partition(vals, len(vals) - k)[len(vals) - k]
        top = np.flatnonzero(vals >= t)
        if len(top) > k:  # ties at the k-th: the earlier entries
            top = top[np.argsort(-vals[top], kind='stable')[:k]]
        if cand is not None:
            top = cand[top]
    return top[sims[top] > -np.inf]


def cbgm_dataset(protocol: PersonSearchProtocol) -> str:
    """``'cuhk-sysu'`` or ``'prw'``: the dataset whose SeqNet ``k1``/``k2``
    fit a protocol.

    CUHK-SYSU: the queries list their galleries (``TestG<S>``) or every
    gallery image has the same camera (its full set); PRW otherwise.
    """
    if protocol.gallery_offsets is not None or \
            len(np.unique(protocol.img_cams)) <= 1:
        return 'cuhk-sysu'
    return 'prw'


__all__ = [
    'CBGM', 'CBGM_DEFAULTS', 'CONTEXT_IOU_THRESH', 'QueryContext',
    'build_query_context', 'cbgm_dataset', 'context_match'
]

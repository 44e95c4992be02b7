# Copyright (c) OpenMMLab. All rights reserved.
"""How query features and gallery similarities are made: the protocols.

Two protocols are in use for person search numbers:

* ``'gt_box'`` (the field's, SeqNet / NAE / COAT): the query feature is the
  model's feature of the annotated query box; a gallery similarity is the dot
  product of the query feature and the detection's feature.
* ``'best_iou_det'`` (the DICL authors' PRW evaluation): the query feature is
  that of the *detection* in the query's own frame that overlaps the query
  box most (the box truncated to integers, as the authors read it; every
  detection of the frame scoring above ``query_det_thresh`` is a candidate,
  whatever its IoU; a zero feature when the frame has none), L2-normalised;
  a gallery similarity is the dot product with the L2-normalised gallery
  feature **multiplied by the detection score**.

Both then rank and score with the same rules (:func:`eval_search`), so that
a number under ``'best_iou_det'`` compares with the authors' published PRW
figures and one under ``'gt_box'`` with the rest of the field.

Only numpy is imported here.
"""
from typing import Sequence, Tuple

import numpy as np

from .detection import pairwise_iou
from .protocol import PersonSearchProtocol

#: Protocol names, and the suffix of their metric names.
SEARCH_PROTOCOLS = {'gt_box': '', 'best_iou_det': '_ref'}


def check_search_protocols(protocols: Sequence[str]) -> Tuple[str, ...]:
    """``protocols`` as a tuple, or a ValueError naming the valid ones."""
    protocols = (protocols, ) if isinstance(protocols, str) else \
        tuple(protocols)
    if not protocols or any(p not in SEARCH_PROTOCOLS for p in protocols):
        raise ValueError('search protocols must be a non-empty subset of '
                         f'{tuple(SEARCH_PROTOCOLS)}, got {protocols!r}')
    return protocols


def l2_normalize(feats: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero, as sklearn's)."""
    feats = np.asarray(feats)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    return feats / np.where(norms > 0, norms, 1).astype(feats.dtype)


def best_iou_query_feats(protocol: PersonSearchProtocol,
                         det_img: np.ndarray,
                         dets: np.ndarray,
                         det_feats: np.ndarray,
                         query_det_thresh: float = 0.05) -> np.ndarray:
    """The authors' PRW query features: the best-IoU detection of the frame.

    Args:
        protocol (PersonSearchProtocol): The test split; ``query_img`` and
            ``query_boxes`` are read.
        det_img (np.ndarray): (M, ) gallery index of every detection.
        dets (np.ndarray): (M, 5) x1, y1, x2, y2, score (original pixels).
        det_feats (np.ndarray): (M, D) detection features.
        query_det_thresh (float): Detections of the query frame scoring
            above it are candidates. Defaults to 0.05 (the test score
            threshold of the authors' detector).

    Returns:
        np.ndarray: (Q, D) L2-normalised query features; zero rows for
        queries whose frame has no candidate (or is not a gallery image).
    """
    det_img = np.asarray(det_img, np.int64).reshape(-1)
    dets = np.asarray(dets).reshape(-1, 5)
    det_feats = np.asarray(det_feats)
    out = np.zeros((protocol.num_queries, det_feats.shape[1]),
                   det_feats.dtype)
    # the candidates grouped by image: image g's are order[off[g]:off[g + 1]]
    cand = np.flatnonzero(dets[:, 4] > query_det_thresh)
    order = cand[np.argsort(det_img[cand], kind='stable')]
    off = np.searchsorted(det_img[order], np.arange(protocol.num_images + 1))
    # the authors read a query box as int32 (x, y, x + w, y + h), clipped
    boxes = np.clip(np.trunc(protocol.query_boxes), 0, None)
    for q, img in enumerate(protocol.query_img):
        rows = order[off[img]:off[img + 1]] if img >= 0 else order[:0]
        if len(rows) == 0:
            continue
        ious = pairwise_iou(dets[rows, :4],
                            np.repeat(boxes[q:q + 1], len(rows), axis=0))
        out[q] = det_feats[rows[int(np.argmax(ious))]]
    return l2_normalize(out)


def score_weighted_feats(dets: np.ndarray,
                         det_feats: np.ndarray) -> np.ndarray:
    """Gallery features of the authors' PRW protocol: ``score * f / |f|``."""
    dets = np.asarray(dets).reshape(-1, 5)
    feats = l2_normalize(det_feats)
    return feats * dets[:, 4:5].astype(feats.dtype)


def protocol_features(name: str, protocol: PersonSearchProtocol,
                      det_img: np.ndarray, dets: np.ndarray,
                      det_feats: np.ndarray, query_feats: np.ndarray,
                      query_det_thresh: float = 0.05
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """``(det_feats, query_feats)`` to rank with under protocol ``name``.

    Args:
        name (str): One of :data:`SEARCH_PROTOCOLS`.
        protocol (PersonSearchProtocol): The test split.
        det_img (np.ndarray): (M, ) gallery index of every detection.
        dets (np.ndarray): (M, 5) boxes and scores.
        det_feats (np.ndarray): (M, D) the model's detection features.
        query_feats (np.ndarray): (Q, D) the model's query-box features
            (unused by ``'best_iou_det'``).
        query_det_thresh (float): See :func:`best_iou_query_feats`.

    Returns:
        tuple[np.ndarray, np.ndarray]: Gallery and query features.
    """
    check_search_protocols(name)
    if name == 'gt_box':
        return det_feats, query_feats
    return (score_weighted_feats(dets, det_feats),
            best_iou_query_feats(protocol, det_img, dets, det_feats,
                                 query_det_thresh))

# Copyright (c) OpenMMLab. All rights reserved.
"""The box rules of person search and the detection figures.

* :func:`pairwise_iou` and :func:`search_iou_thresholds`: the IoU of the
  field's ``_compute_iou`` and the search match threshold
  ``min(0.5, w * h / ((w + 10) * (h + 10)))`` of a ground-truth box.
* :func:`eval_detection`: recall and AP at IoU 0.5 with one-to-one argmax
  matching (SeqNet's ``eval_detection``), without a Python loop over images.

AP is computed by counting (see :func:`ap_from_counts`): with sklearn's
grouping of tied scores, ``AP_sklearn * tp / gt = sum over true positives i
of P(s_i) / gt`` where ``P(s) = #TP(score >= s) / #(score >= s)``.

Only numpy is imported here.
"""
from typing import Dict

import numpy as np

from .protocol import PersonSearchProtocol, check_detections


def concat_ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n)."""
    lens = np.asarray(lens, np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lens)
    shift = np.repeat(np.asarray(starts, np.int64) - (ends - lens), lens)
    return np.arange(total, dtype=np.int64) + shift


def first_argmax(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
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


def ap_from_counts(tp_ge: np.ndarray, n_ge: np.ndarray,
                   num_gt: int) -> float:
    """``sum(tp_ge / n_ge) / num_gt``: sklearn's AP times the recall.

    Args:
        tp_ge (np.ndarray): (T, ) for each true positive, the number of true
            positives scoring at least as high.
        n_ge (np.ndarray): (T, ) for each true positive, the number of
            detections scoring at least as high.
        num_gt (int): Number of ground-truth boxes.

    Returns:
        float: The AP (0 without boxes or true positives).
    """
    if num_gt == 0 or len(tp_ge) == 0:
        return 0.0
    return float(np.sum(tp_ge / n_ge) / num_gt)


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
    det_img, dets, _ = check_detections(protocol, det_img, dets)
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
    p_gt = gt_idx[concat_ranges(gt_off[d_img], lens)]
    iou = pairwise_iou(d_box[p_det], protocol.gt_boxes[p_gt]).astype(
        np.float32)
    tf = iou >= iou_thresh
    tf &= first_argmax(p_det, iou)
    by_gt = np.lexsort((p_det, p_gt))
    tf[by_gt] &= first_argmax(p_gt[by_gt], iou[by_gt])

    y_true = np.zeros(len(order), bool)
    y_true[p_det[tf]] = True
    num_gt = int(len(gt_idx))
    num_tp = int(tf.sum())
    recall = num_tp / num_gt if num_gt else 0.0
    s_all = np.sort(scores)
    s_tp = np.sort(scores[y_true])
    n_ge = len(s_all) - np.searchsorted(s_all, s_tp, side='left')
    tp_ge = len(s_tp) - np.searchsorted(s_tp, s_tp, side='left')
    ap = ap_from_counts(tp_ge, n_ge, num_gt) if num_tp else 0.0
    return dict(recall=float(recall), ap=ap, num_gt=num_gt, num_tp=num_tp,
                num_det=int(len(order)))


__all__ = ['pairwise_iou', 'search_iou_thresholds', 'eval_detection']

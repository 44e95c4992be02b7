# Copyright (c) OpenMMLab. All rights reserved.
"""The DICL authors' PRW protocol ('best_iou_det'): exact values on a
hand-built case, and equality with a per-query port of the authors'
``test_results_prw.py`` rules on random data."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from mmps.evaluation.functional import (PersonSearchProtocol,
                                        best_iou_query_feats,
                                        evaluate_person_search,
                                        score_weighted_feats)
from .utils import flat_dets, make_infos

BOX = [10, 10, 60, 110]  # the query box


def _hand_case():
    images = [
        dict(boxes=[BOX], pids=[7]),  # the query frame
        dict(boxes=[[0, 0, 50, 100], [100, 0, 150, 100]], pids=[7, 3]),
        dict(boxes=[[0, 0, 50, 100]], pids=[5]),
    ]
    dets = [
        # IoU with BOX: 0.9 but score 0.04 (not a candidate), ~0.66, ~0.38
        [BOX + [0.04], [10, 10, 60, 90, 0.8], [20, 30, 60, 110, 0.9]],
        [[0, 0, 50, 100, 0.6], [100, 0, 150, 100, 0.9]],
        [[0, 0, 50, 100, 0.95]],
    ]
    feats = [
        [[0., 9.], [0., 2.], [3., 0.]],  # the query: normalize([0, 2])
        [[1., 1.], [0., 4.]],
        [[0., -1.]],
    ]
    queries = [dict(pid=7, img=0, box=BOX)]
    return images, queries, dets, feats


def test_query_is_the_normalised_best_iou_candidate():
    images, queries, dets, feats = _hand_case()
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    q = best_iou_query_feats(protocol, det_img, d, f)
    np.testing.assert_allclose(q, [[0., 1.]])
    # a lower candidate threshold admits the 0.04 detection
    q = best_iou_query_feats(protocol, det_img, d, f, query_det_thresh=0.)
    np.testing.assert_allclose(q, [[0., 1.]])  # [0, 9] normalised
    # no candidate in the frame: a zero feature
    far = d.copy()
    far[det_img == 0, 4] = 0.01
    np.testing.assert_array_equal(
        best_iou_query_feats(protocol, det_img, far, f), [[0., 0.]])
    # gallery: score x normalised feature
    g = score_weighted_feats(d, f)
    np.testing.assert_allclose(g[3], 0.6 * np.array([1., 1.]) / np.sqrt(2))
    np.testing.assert_allclose(g[4], [0., 0.9])


def test_hand_values_of_both_protocols():
    images, queries, dets, feats = _hand_case()
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    out = evaluate_person_search(
        protocol,
        det_img,
        d,
        f,
        np.array([[1., 0.]]),
        protocols=('gt_box', 'best_iou_det'))
    # gallery kept (score >= 0.5): img1 T (0.6) and N (0.9), img2 N (0.95)
    # gt_box, query [1, 0]: sims T 1, N 0, N 0 -> AP 1
    assert out['mAP'] == pytest.approx(1.0) and out['top-1'] == 1.0
    # best_iou_det, query [0, 1]: sims T 0.6 / sqrt(2) = 0.424, N 0.9,
    # N -0.95 -> the target ranks 2nd: AP 1/2
    assert out['mAP_ref'] == pytest.approx(0.5)
    assert (out['top-1_ref'], out['top-5_ref']) == (0.0, 1.0)
    with pytest.raises(ValueError, match='protocols'):
        evaluate_person_search(protocol, det_img, d, f, np.zeros((1, 2)),
                               protocols=('box', ))


def _iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (union - inter)


def authors_prw_search(images, queries, dets, feats, det_thresh=0.5):
    """The authors' PRW evaluation, query by query, as their script does it.
    """
    def norm(x):
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(n > 0, n, 1)

    aps, top1 = [], []
    for qu in queries:
        own = np.asarray(dets[qu['img']]).reshape(-1, 5)
        box = np.clip(np.array(qu['box']).astype(np.int32), 0, None)
        if len(own):
            ious = [_iou(r[:4], box) for r in own]
            feat_p = norm(np.asarray(feats[qu['img']]))[int(np.argmax(ious))]
        else:
            feat_p = np.zeros(2)
        y_true, y_score, count_gt, count_tp = [], [], 0, 0
        for g, im in enumerate(images):
            if g == qu['img']:
                continue
            gts = [b for b, p in zip(im['boxes'], im['pids'])
                   if p == qu['pid']]
            count_gt += bool(gts)
            d = np.asarray(dets[g]).reshape(-1, 5)
            keep = d[:, 4] >= det_thresh
            if not keep.any():
                continue
            d = d[keep]
            fg = norm(np.asarray(feats[g]).reshape(-1, 2)[keep]) * d[:, 4:5]
            sim = fg @ feat_p
            label = np.zeros(len(sim), int)
            if gts:
                gt = gts[0]
                w, h = gt[2] - gt[0], gt[3] - gt[1]
                thr = min(0.5, w * h / ((w + 10) * (h + 10)))
                inds = np.argsort(sim)[::-1]
                sim, d = sim[inds], d[inds]
                for j, r in enumerate(d):
                    if _iou(r[:4], gt) >= thr:
                        label[j] = 1
                        count_tp += 1
                        break
            y_true += list(label)
            y_score += list(sim)
        rate = count_tp / count_gt if count_gt else 0
        aps.append(0 if count_tp == 0 else
                   average_precision_score(y_true, y_score) * rate)
        order = np.argsort(y_score)[::-1]
        top1.append(bool(len(order)) and np.asarray(y_true)[order[0]] == 1)
    return np.mean(aps), np.mean(top1)


@pytest.mark.parametrize('seed,min_dets', [(0, 0), (1, 0), (2, 1), (3, 1)])
def test_equals_the_authors_rules_on_random_data(seed, min_dets):
    """mAP always; top-1 where every frame has a detection: a query frame
    without one gives a zero query feature, all similarities tie at 0, and
    the authors' ``argsort(...)[::-1]`` then calls it a hit when the last
    listed detection is a target, while mmps ranks ties pessimistically."""
    rng = np.random.RandomState(seed)
    images, dets, feats = [], [], []
    for _ in range(12):
        n = rng.randint(1, 4)
        xy = rng.randint(0, 300, size=(n, 2)).astype(float)
        wh = rng.randint(20, 80, size=(n, 2)) * [1, 2.]
        boxes = np.c_[xy, xy + wh]
        images.append(dict(boxes=boxes.tolist(),
                           pids=rng.randint(0, 5, n).tolist()))
        m = rng.randint(min_dets, 5)  # 0: some frames without detections
        jit = boxes[rng.randint(0, n, m)] + rng.normal(0, 5, (m, 4))
        dets.append(np.c_[jit, rng.uniform(0.06, 1, m)].tolist())
        # distinct, non-unit features (no ties)
        feats.append((rng.normal(size=(m, 2)) * 3).tolist())
    queries = []
    for g, im in enumerate(images):
        for b, p in zip(im['boxes'], im['pids']):
            queries.append(
                dict(pid=p, img=g, box=(np.array(b) + [0.4, 0.7, 0.2, 0.9])))
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    out = evaluate_person_search(
        protocol, det_img, d, f, np.zeros((len(queries), 2)),
        protocols=('best_iou_det', ))
    ref_map, ref_top1 = authors_prw_search(images, queries, dets, feats)
    assert out['mAP_ref'] == pytest.approx(ref_map, abs=1e-6)
    if min_dets:
        assert out['top-1_ref'] == pytest.approx(ref_top1, abs=1e-6)
    assert 'mAP' not in out

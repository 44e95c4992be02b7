# Copyright (c) OpenMMLab. All rights reserved.
"""Search mAP / top-k: exact values on tiny cases, and equality with a
straightforward per-query reference (the field's ``eval_func.py`` rules)."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from mmps.evaluation.functional import (PersonSearchProtocol, eval_detection,
                                        eval_search, evaluate_person_search,
                                        rank_search, search_iou_thresholds)
from .utils import (BIG, basic_case, flat_dets, make_infos, random_case,
                    ref_detection, ref_search, run, unit)


def test_basic_ap_and_topk():
    # kept gallery sims: .9 N, .8 T, .7 N, .6 N, .5 T  (0.95 scores 0.4)
    res = run(*basic_case())
    assert res['mAP'] == pytest.approx((1 / 2 + 2 / 5) / 2)
    assert (res['top-1'], res['top-5'], res['top-10']) == (0., 1., 1.)
    assert res['count_gt'].tolist() == [2] and res['count_tp'].tolist() == [2]


def test_det_thresh():
    # with 0.3 the 0.95 detection (a negative) enters first
    res = run(*basic_case(), det_thresh=0.3)
    assert res['mAP'] == pytest.approx((1 / 3 + 2 / 6) / 2)
    assert (res['top-1'], res['top-5']) == (0., 1.)


def test_one_true_positive_per_image_the_most_similar():
    images, queries, dets, feats, qf = basic_case()
    # a second detection on the image-2 target, more similar than the first
    dets[2].append([55, 55, 150, 250, 0.9])
    feats[2].append(unit(0.75))
    # ranking .9 N, .8 T, .75 T, .7 N, .6 N, .5 N (the exact box: negative)
    res = run(images, queries, dets, feats, qf)
    assert res['mAP'] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert res['count_tp'].tolist() == [2]


def test_recall_scaling_and_undetected_target():
    images, queries, dets, feats, qf = basic_case()
    images.append(dict(boxes=[[10, 10, 90, 170]], pids=[7], cam=2))
    dets.append([])
    feats.append(np.zeros((0, 2)))
    res = run(images, queries, dets, feats, qf)
    assert res['mAP'] == pytest.approx((1 / 2 + 2 / 5) / 2 * 2 / 3)
    assert res['count_gt'].tolist() == [3]


def test_iou_rule_for_small_boxes():
    # GT 10 x 20: threshold 200 / (20 * 30) = 1/3; the det has IoU 0.4
    assert search_iou_thresholds(np.array([[0, 0, 10, 20]]))[0] == \
        pytest.approx(1 / 3)
    images = [
        dict(boxes=[BIG], pids=[5]),
        dict(boxes=[[0, 0, 10, 20]], pids=[5]),
        dict(boxes=[BIG], pids=[5]),
    ]
    dets = [[], [[0, 0, 10, 8, 0.9]], [[0, 0, 100, 80, 0.9]]]  # IoU .4, .4
    feats = [np.zeros((0, 2)), [unit(0.9)], [unit(0.8)]]
    res = run(images, [dict(pid=5, img=0)], dets, feats, np.array([[1., 0.]]))
    # small box found (rank 1), big one missed: AP = 1 * 1/2
    assert res['mAP'] == pytest.approx(0.5)
    assert res['top-1'] == 1.
    assert res['count_tp'].tolist() == [1]


def test_cross_camera():
    # query camera 1: image 2 (target, cam 1) leaves the gallery
    # kept: .9 N, .8 T (image 1), .6 N (image 3) -> AP 1/2, count_gt 1
    res = run(*basic_case(), cross_camera=True)
    assert res['mAP'] == pytest.approx(1 / 2)
    assert res['count_gt'].tolist() == [1]
    assert (res['top-1'], res['top-5']) == (0., 1.)


def test_listed_gallery():
    images, queries, dets, feats, qf = basic_case()
    queries = [dict(pid=7, img=0, cam=1, gallery=[2, 3])]
    # .7 N, .6 N, .5 T
    res = run(images, queries, dets, feats, qf)
    assert res['mAP'] == pytest.approx(1 / 3)
    assert (res['top-1'], res['top-5']) == (0., 1.)
    # the query's own image is kept when listed
    queries[0]['gallery'] = [0, 2]
    res = run(images, queries, dets, feats, qf)
    # 1.0 T (own image contains pid 7), .7 N, .5 T
    assert res['mAP'] == pytest.approx((1 + 2 / 3) / 2)
    assert res['top-1'] == 1.


def test_ties_are_pessimistic():
    images = [dict(boxes=[BIG], pids=[1]), dict(boxes=[BIG], pids=[1]),
              dict(boxes=[BIG], pids=[2])]
    dets = [[], [BIG + [0.9]], [BIG + [0.9]]]
    feats = [np.zeros((0, 2)), [unit(0.5)], [unit(0.5)]]
    res = run(images, [dict(pid=1, img=0)], dets, feats, np.array([[1., 0.]]))
    assert res['mAP'] == pytest.approx(0.5)  # sklearn groups the tie
    assert (res['top-1'], res['top-5']) == (0., 1.)
    ref = average_precision_score([1, 0], [0.5, 0.5])
    assert res['mAP'] == pytest.approx(ref)


def test_query_without_target_counts_as_zero():
    images, queries, dets, feats, qf = basic_case()
    queries = queries + [dict(pid=3, img=1, cam=2), dict(pid=99, img=2)]
    res = run(images, queries, dets, feats, np.repeat(qf, 3, 0))
    assert res['aps'][1] == 0. and res['aps'][2] == 0.
    assert res['count_gt'].tolist() == [2, 0, 0]
    assert res['mAP'] == pytest.approx((1 / 2 + 2 / 5) / 2 / 3)


def test_fewer_dets_than_k_and_empty_results():
    images, queries, dets, feats, qf = basic_case()
    empty = [[] for _ in images]
    res = run(images, queries, empty, [np.zeros((0, 2))] * len(images), qf)
    assert res['mAP'] == 0. and res['top-10'] == 0.
    det = eval_detection(
        PersonSearchProtocol.from_data_infos(make_infos(images, queries)),
        np.zeros(0, np.int64), np.zeros((0, 5)))
    assert det['recall'] == 0. and det['ap'] == 0. and det['num_gt'] == 5
    # one detection only: rank 1
    one = [[], [BIG + [0.9]], [], []]
    f = [np.zeros((0, 2)), [unit(0.3)], np.zeros((0, 2)), np.zeros((0, 2))]
    res = run(images, queries, one, f, qf)
    assert res['mAP'] == pytest.approx(1 / 2)
    assert res['top-1'] == 1.


def test_zero_queries():
    images, _, dets, feats, _ = basic_case()
    res = run(images, [], dets, feats, np.zeros((0, 2)))
    assert res['mAP'] == 0. and res['top-1'] == 0. and len(res['aps']) == 0

@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('style', ['cuhk', 'prw', 'prw-cross', 'tied'])
def test_equals_reference(seed, style):
    listed = style == 'cuhk'
    cross = style == 'prw-cross'
    images, queries, dets, feats, qfeats = random_case(
        seed, listed, quantised=style == 'tied')
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    order = np.random.default_rng(seed + 100).permutation(len(images))
    det_img, d, f = flat_dets(dets, feats, order=order)
    for thresh in (0.5, 0.3):
        got = eval_search(protocol, det_img, d, f, qfeats, det_thresh=thresh,
                          cross_camera=cross)
        ref = ref_search(images, queries, dets, feats, qfeats,
                         det_thresh=thresh, cross_camera=cross)
        for key in ('mAP', 'top-1', 'top-5', 'top-10'):
            assert abs(got[key] - ref[key]) <= 1e-6, (key, got[key], ref[key])
        np.testing.assert_allclose(got['aps'], ref['aps'], atol=1e-9)
        for labeled in (False, True):
            got_d = eval_detection(protocol, det_img, d, det_thresh=thresh,
                                   labeled_only=labeled)
            ref_d = ref_detection(images, dets, det_thresh=thresh,
                                  labeled_only=labeled)
            assert abs(got_d['recall'] - ref_d['recall']) <= 1e-6
            assert abs(got_d['ap'] - ref_d['ap']) <= 1e-6
    assert 0 < got['mAP'] < 1  # a meaningful case
    assert (got['count_gt'] > got['count_tp']).any()


def test_dense_and_gathered_galleries_agree(monkeypatch):
    import mmps.evaluation.functional.search as ps
    images, queries, dets, feats, qfeats = random_case(3, listed=True)
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    outs = []
    for frac in (0., 1.):  # all dense, all gathered
        monkeypatch.setattr(ps, 'DENSE_GALLERY_FRACTION', frac)
        outs.append(eval_search(protocol, det_img, d, f, qfeats))
    np.testing.assert_allclose(outs[0]['aps'], outs[1]['aps'], atol=1e-9)
    assert outs[0]['top-1'] == outs[1]['top-1']


def test_evaluate_person_search_keys():
    images, queries, dets, feats, qfeats = random_case(1, listed=False)
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    out = evaluate_person_search(protocol, det_img, d, f, qfeats,
                                 cross_camera='both')
    assert set(out) == {
        'mAP', 'top-1', 'top-5', 'top-10', 'mAP_cross_cam', 'top-1_cross_cam',
        'top-5_cross_cam', 'top-10_cross_cam', 'det_recall', 'det_ap',
        'det_recall_labeled', 'det_ap_labeled'
    }
    assert out['mAP_cross_cam'] == eval_search(
        protocol, det_img, d, f, qfeats, cross_camera=True)['mAP']
    with pytest.raises(ValueError, match='cross_camera'):
        evaluate_person_search(protocol, det_img, d, f, qfeats,
                               cross_camera='yes')


# -- rankings -----------------------------------------------------------------
def ranking_of(images, query_list, dets, feats, qfeats, **kw):
    protocol = PersonSearchProtocol.from_data_infos(
        make_infos(images, query_list))
    det_img, d, f = flat_dets(dets, feats)
    return rank_search(protocol, det_img, d, f, qfeats, **kw)


def listing(ranking):
    """(det_index, img, sim, rank, match) of every listed detection."""
    return list(
        zip(ranking.det_index.tolist(), ranking.img.tolist(),
            np.round(ranking.sims, 6).tolist(), ranking.ranks.tolist(),
            ranking.matches.tolist()))


def test_rankings_under_the_prw_rules():
    # every gallery image but the query's own (image 0); det rows by image:
    # 0 | 1, 2 | 3, 4 | 5, 6 (row 6 scores 0.4)
    images, queries, dets, feats, qf = basic_case()
    r, = ranking_of(images, queries, dets, feats, qf, k=3)
    assert r.query == 0 and r.num_gt == 2
    assert listing(r) == [(2, 1, 0.9, 1, False), (1, 1, 0.8, 2, True),
                          (4, 2, 0.7, 3, False)]
    np.testing.assert_array_equal(r.boxes, [[200, 0, 300, 200], BIG,
                                            [400, 400, 500, 600]])
    np.testing.assert_array_equal(r.scores, [0.9, 0.9, 0.9])
    r, = ranking_of(images, queries, dets, feats, qf, k=None)
    assert [x[0] for x in listing(r)] == [2, 1, 4, 5, 3]
    assert r.matches.tolist() == [False, True, False, False, True]
    # det_thresh: the 0.95 negative of image 3 enters first
    r, = ranking_of(images, queries, dets, feats, qf, k=2, det_thresh=0.3)
    assert listing(r) == [(6, 3, 0.95, 1, False), (2, 1, 0.9, 2, False)]
    # cross-camera: image 2 (the query's camera 1) leaves the gallery
    r, = ranking_of(images, queries, dets, feats, qf, k=None,
                    cross_camera=True)
    assert listing(r) == [(2, 1, 0.9, 1, False), (1, 1, 0.8, 2, True),
                          (5, 3, 0.6, 3, False)]
    assert r.num_gt == 1


def test_rankings_flag_one_true_positive_per_image():
    images, queries, dets, feats, qf = basic_case()
    # a second detection on the image-2 target, more similar than the exact
    # box: it is the image's true positive, the exact box a negative
    dets[2].append([55, 55, 150, 250, 0.9])
    feats[2].append(unit(0.75))
    r, = ranking_of(images, queries, dets, feats, qf, k=None)
    assert listing(r) == [(2, 1, 0.9, 1, False), (1, 1, 0.8, 2, True),
                          (5, 2, 0.75, 3, True), (4, 2, 0.7, 4, False),
                          (6, 3, 0.6, 5, False), (3, 2, 0.5, 6, False)]


def test_rankings_under_the_cuhk_sysu_rules():
    images, queries, dets, feats, qf = basic_case()
    # the query's list: its own image (listed, so kept) and images 2 and 3
    queries = [dict(pid=7, img=0, cam=1, gallery=[3, 0, 2]),
               dict(pid=3, img=1, cam=2, gallery=[1, 3])]
    r0, r1 = ranking_of(images, queries, dets, feats, np.repeat(qf, 2, 0))
    assert r0.num_gt == 2
    assert listing(r0) == [(0, 0, 1.0, 1, True), (4, 2, 0.7, 2, False),
                           (5, 3, 0.6, 3, False), (3, 2, 0.5, 4, True)]
    # pid 3's own image is listed: its box (row 2) is the true positive
    assert r1.num_gt == 1
    assert listing(r1) == [(2, 1, 0.9, 1, True), (1, 1, 0.8, 2, False),
                           (5, 3, 0.6, 3, False)]
    # a subset of the queries, in the order asked
    r1b, r0b = ranking_of(images, queries, dets, feats, np.repeat(qf, 2, 0),
                          queries=[1, 0], k=2)
    assert (r1b.query, r0b.query) == (1, 0)
    assert listing(r0b) == listing(r0)[:2]
    with pytest.raises(ValueError, match='queries must index'):
        ranking_of(images, queries, dets, feats, np.repeat(qf, 2, 0),
                   queries=[2])


def test_rankings_list_ties_pessimistically_and_unknown_identities():
    images = [dict(boxes=[BIG], pids=[1]), dict(boxes=[BIG], pids=[1]),
              dict(boxes=[BIG], pids=[2])]
    dets = [[], [BIG + [0.9]], [BIG + [0.9]]]
    feats = [np.zeros((0, 2)), [unit(0.5)], [unit(0.5)]]
    queries = [dict(pid=1, img=0), dict(pid=-1, img=0)]
    r, unknown = ranking_of(images, queries, dets, feats,
                            np.array([[1., 0.], [1., 0.]]))
    # tied: the negative first; both rank 2, so no top-1 hit
    assert listing(r) == [(1, 2, 0.5, 2, False), (0, 1, 0.5, 2, True)]
    assert unknown.num_gt == 0 and not unknown.matches.any()
    assert len(unknown.img) == 2


@pytest.mark.parametrize('seed', range(3))
@pytest.mark.parametrize('style', ['cuhk', 'prw', 'prw-cross', 'tied'])
def test_rankings_agree_with_eval_search(seed, style):
    images, queries, dets, feats, qfeats = random_case(
        seed, style == 'cuhk', quantised=style == 'tied')
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    order = np.random.default_rng(seed).permutation(len(images))
    det_img, d, f = flat_dets(dets, feats, order=order)
    cross = style == 'prw-cross'
    topk = (1, 3, 5, 10)
    res = eval_search(protocol, det_img, d, f, qfeats, cross_camera=cross,
                      topk=topk)
    full = rank_search(protocol, det_img, d, f, qfeats, k=None,
                       cross_camera=cross)
    short = rank_search(protocol, det_img, d, f, qfeats, k=5,
                        cross_camera=cross)
    for q, (r, s) in enumerate(zip(full, short)):
        assert r.query == q and listing(s) == listing(r)[:5]
        assert r.num_gt == res['count_gt'][q]
        assert r.matches.sum() == res['count_tp'][q]
        hits = [(r.matches & (r.ranks <= k)).any() for k in topk]
        assert hits == res['hits'][q].tolist()
        assert np.all(np.diff(r.sims) <= 0)
        assert np.all(d[r.det_index, 4] >= 0.5)
        assert np.array_equal(r.img, det_img[r.det_index])
        # the whole gallery is listed: the query's own image never
        own = protocol.query_img[q]
        gal = protocol.gallery(q)
        if gal is None:
            assert own not in r.img
        else:
            assert set(r.img.tolist()) <= set(gal.tolist())
    assert sum(res['count_tp']) > 0

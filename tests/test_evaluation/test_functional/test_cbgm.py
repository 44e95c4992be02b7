# Copyright (c) OpenMMLab. All rights reserved.
"""CBGM: hand-made cases with their values, and equality with a reference
written after SeqNet's ``eval_func.py`` (per query and image, the matching by
enumeration instead of scipy's assignment)."""
from itertools import permutations

import numpy as np
import pytest

from mmps.evaluation.functional import (CBGM, CBGM_DEFAULTS,
                                        PersonSearchProtocol, QueryContext,
                                        build_query_context, cbgm_dataset,
                                        context_match, eval_search,
                                        evaluate_person_search)
from .utils import BIG, _iou, flat_dets, make_infos, random_case, ref_search


# -- hand-made cases ----------------------------------------------------------
def test_context_match():
    # the context person takes the query's best detection: the query box
    # gets detection 0 and the pair (1, 1)'s 0.9
    col, best = context_match(np.array([[0.4, 0.6], [0.1, 0.9]]))
    assert (col, best) == (0, 0.9)
    # more rows than detections: the context person takes the only one, the
    # query box is left unmatched
    assert context_match(np.array([[0.5], [0.95]])) == (-1, 0.95)
    assert context_match(np.array([[0.8], [0.0]])) == (0, 0.8)
    # three rows, two detections: the best pair of rows, 0.9 + 0.7 = 1.6
    # beats 0.5 + 0.7 (the query box matched)
    col, best = context_match(np.array([[0.5, 0.2], [0.9, 0.1], [0.0, 0.7]]))
    assert (col, best) == (-1, 0.9)
    # 0.9 + 0.7 beats 0.5 + 0.7: the query box, and the context's 0.7 is
    # below its own 0.9
    col, best = context_match(np.array([[0.9, 0.2], [0.5, 0.1], [0.0, 0.7]]))
    assert (col, best) == (0, 0.9)


def context_case():
    """One query (pid 7, image 0, camera 1); context person pid 3.

    Features are 2-d: the dot product with the query feature (1, 0) is the
    first value, with the context person's (0, 1) the second.
    """
    images = [
        dict(boxes=[BIG, [200, 0, 300, 200]], pids=[7, 3], cam=1),
        dict(boxes=[[0, 0, 90, 180], [300, 0, 390, 180]], pids=[7, 3], cam=2),
        dict(boxes=[[0, 0, 80, 160]], pids=[4], cam=2),
        dict(boxes=[[0, 0, 80, 160]], pids=[3], cam=1),
    ]
    dets = [
        # the query person (IoU > 0.5 with its box: not context), the
        # context person, a low-scoring one
        [[2, 2, 100, 200, 0.95], [200, 0, 300, 200, 0.9],
         [400, 0, 500, 200, 0.3]],
        [[0, 0, 90, 180, 0.9], [300, 0, 390, 180, 0.8]],  # target, context
        [[0, 0, 80, 160, 0.9]],  # a look-alike of the query
        [[0, 0, 80, 160, 0.9]],  # the context person alone
    ]
    feats = [
        [[0.99, 0.], [0., 1.], [0., -1.]],
        [[0.4, 0.1], [0.6, 0.9]],
        [[0.8, 0.]],
        [[0.5, 0.95]],
    ]
    queries = [dict(pid=7, img=0, cam=1, box=BIG)]
    return images, queries, dets, feats, np.array([[1., 0.]])


def setup(case, listed=False):
    images, queries, dets, feats, qfeats = case
    if listed:
        queries = [dict(q, gallery=[1, 2, 3]) for q in queries]
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    return protocol, det_img, d, f, qfeats


def test_build_query_context():
    protocol, det_img, d, f, qf = setup(context_case())
    ctx = build_query_context(protocol, det_img, d, f, qf)
    np.testing.assert_array_equal(ctx.query, [0, 0])
    np.testing.assert_array_equal(ctx.dets,
                                  [BIG + [1.], [200, 0, 300, 200, 0.9]])
    np.testing.assert_array_equal(ctx.feats, [[1., 0.], [0., 1.]])
    # a lower threshold lets the third person in, after the second
    ctx = build_query_context(protocol, det_img, d, f, qf, det_thresh=0.2)
    np.testing.assert_array_equal(ctx.dets[:, 4], [1., 0.9, 0.3])
    # the query person itself counts as context above the IoU threshold
    ctx = build_query_context(protocol, det_img, d, f, qf, iou_thresh=1.)
    np.testing.assert_array_equal(ctx.dets[:, 4], [1., 0.95, 0.9])
    # several queries, one outside the gallery: grouped, box first
    images, queries, dets, feats, _ = context_case()
    queries = [dict(pid=3, img=1, cam=2, box=[300, 0, 390, 180]),
               dict(pid=7, img=0, cam=1, box=BIG)]
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    protocol.query_img[1] = -1  # its frame is not a gallery image
    qf = np.array([[0., 1.], [1., 0.]])
    ctx = build_query_context(protocol, det_img, d, f, qf)
    np.testing.assert_array_equal(ctx.query, [0, 0, 1])
    np.testing.assert_array_equal(ctx.dets[:, 4], [1., 0.9, 1.])
    np.testing.assert_array_equal(ctx.feats, [[0., 1.], [0.4, 0.1],
                                              [1., 0.]])


def test_rows_in_use():
    # rows out of order; the box of each query is its first row
    ctx = QueryContext(
        query=[1, 0, 1, 0, 0, 1, 0],
        dets=[[0, 0, 1, 1, s] for s in (1., 1., .6, .7, .3, .9, .8)],
        feats=np.arange(14.).reshape(7, 2))
    index, query = CBGM(ctx, k2=3).rows(det_thresh=0.5)
    # query 0: box (row 1), then 0.8 (row 6), 0.7 (row 3); 0.3 is dropped
    # query 1: box (row 0), then 0.9 (row 5), 0.6 (row 2)
    np.testing.assert_array_equal(index, [1, 6, 3, 0, 5, 2])
    np.testing.assert_array_equal(query, [0, 0, 0, 1, 1, 1])
    index, _ = CBGM(ctx, k2=2).rows(det_thresh=0.75)
    np.testing.assert_array_equal(index, [1, 6, 0, 5])
    # the box stays, whatever its score
    ctx.dets[1, 4] = 0.
    index, _ = CBGM(ctx, k2=1).rows(det_thresh=0.5)
    np.testing.assert_array_equal(index, [1, 0])
    with pytest.raises(ValueError, match='k1 and k2'):
        CBGM(ctx, k1=0)


@pytest.mark.parametrize('listed', [False, True])
def test_context_person_recovers_the_target(listed):
    protocol, det_img, d, f, qf = setup(context_case(), listed)
    ctx = build_query_context(protocol, det_img, d, f, qf)
    # without CBGM: 0.8 (img 2), 0.6 (img 1, context person), 0.5 (img 3),
    # then the target at 0.4: AP 1 / 4, top-1 miss
    plain = eval_search(protocol, det_img, d, f, qf)
    assert plain['aps'][0] == pytest.approx(0.25, abs=1e-12)
    assert plain['top-1'] == 0. and plain['top-5'] == 1.
    # k1 = 1 re-scores image 2 only: a single detection the query box keeps
    assert eval_search(protocol, det_img, d, f, qf,
                       cbgm=CBGM(ctx, k1=1))['aps'][0] == pytest.approx(0.25)
    # k1 = 2 reaches image 1: the matching (query box -> target 0.4,
    # context -> context person 0.9) beats (0.6 + 0.1); the target gets 0.9
    res = eval_search(protocol, det_img, d, f, qf, cbgm=CBGM(ctx, k1=2))
    assert res['aps'][0] == 1. and res['top-1'] == 1.
    # the box alone (k2 = 1) changes nothing
    res = eval_search(protocol, det_img, d, f, qf, cbgm=CBGM(ctx, k2=1))
    assert res['aps'][0] == pytest.approx(0.25, abs=1e-12)


def test_rescored_similarities():
    protocol, det_img, d, f, qf = setup(context_case())
    ctx = build_query_context(protocol, det_img, d, f, qf)
    kept = d[:, 4] >= 0.5
    d_img, d_feat = det_img[kept], f[kept]
    d_off = np.searchsorted(d_img, np.arange(protocol.num_images + 1))
    rescore = CBGM(ctx, k1=10, k2=3).rescorer(1, d_img, d_off, d_feat, 0.5)
    sims = d_feat @ qf[0]
    sims[d_off[0]:d_off[1]] = -np.inf  # the query's own image
    got = rescore(0, sims.copy(), None)
    # image 1: the target 0.4 -> 0.9, the context person keeps 0.6;
    # image 2: a single look-alike keeps 0.8; image 3: the context person
    # takes the only detection, the query box is unmatched: 0.5 stays
    np.testing.assert_array_equal(got, [-np.inf, -np.inf, 0.9, 0.6, 0.8,
                                        0.5])
    # listed gallery entries (images 3, 1): same values, in entry order
    pos = np.array([5, 2, 3])
    got = rescore(0, d_feat[pos] @ qf[0], pos)
    np.testing.assert_array_equal(got, [0.5, 0.9, 0.6])


@pytest.mark.parametrize('n,k', [(5, 10), (50, 10), (3000, 10), (40000, 30),
                                 (40000, 1)])
def test_top_entries(n, k):
    from mmps.evaluation.functional.cbgm import _top_entries
    rng = np.random.default_rng(n + k)
    for trial in range(4):
        # many ties (quantised) and entries outside the gallery (-inf)
        sims = np.round(rng.normal(size=n), 1 if trial % 2 else 6)
        sims[rng.random(n) < (0.99 if trial == 3 else 0.2)] = -np.inf
        got = _top_entries(sims, k)
        ref = np.argsort(-sims, kind='stable')[:k]
        np.testing.assert_array_equal(np.sort(got),
                                      np.sort(ref[sims[ref] > -np.inf]))


def test_defaults_by_dataset():
    protocol, det_img, d, f, qf = setup(context_case())
    assert cbgm_dataset(protocol) == 'prw'  # full gallery, two cameras
    ctx = build_query_context(protocol, det_img, d, f, qf)
    cb = CBGM.for_protocol(ctx, protocol)
    assert (cb.k1, cb.k2) == CBGM_DEFAULTS['prw'] == (30, 4)
    cb = CBGM.for_protocol(ctx, protocol, k2=2)
    assert (cb.k1, cb.k2) == (30, 2)
    protocol, *_ = setup(context_case(), listed=True)
    assert cbgm_dataset(protocol) == 'cuhk-sysu'
    assert CBGM_DEFAULTS['cuhk-sysu'] == (10, 3)
    protocol.img_cams[:] = 0
    protocol.gallery_offsets = protocol.gallery_ids = None
    assert cbgm_dataset(protocol) == 'cuhk-sysu'  # its full set


def test_bad_context():
    protocol, det_img, d, f, qf = setup(context_case())
    with pytest.raises(ValueError, match=r'dets must be \(2, 5\)'):
        QueryContext(query=[0, 0], dets=np.zeros((2, 4)), feats=qf[[0, 0]])
    with pytest.raises(ValueError, match='NaN'):
        QueryContext(query=[0], dets=[[0, 0, 1, 1, np.nan]], feats=qf)
    ctx = QueryContext(query=[3], dets=[[0, 0, 1, 1, 1.]], feats=qf)
    with pytest.raises(ValueError, match='index the 1 queries'):
        eval_search(protocol, det_img, d, f, qf, cbgm=CBGM(ctx))
    ctx = QueryContext(query=[0], dets=[[0, 0, 1, 1, 1.]],
                       feats=np.zeros((1, 3)))
    with pytest.raises(ValueError, match='3 dims'):
        eval_search(protocol, det_img, d, f, qf, cbgm=CBGM(ctx))


# -- the reference ------------------------------------------------------------
def ref_contexts(images, queries, dets, feats, qfeats, det_thresh=0.5):
    """Per query: its feature, then those of its frame's detections scoring
    ``>= det_thresh`` that the NMS of its box at score 1 (IoU > 0.5) keeps,
    by decreasing score (SeqNet re-detects the query frame so)."""
    out = []
    for q, qu in enumerate(queries):
        rows = [(1., qfeats[q])]
        for det, feat in zip(np.asarray(dets[qu['img']]).reshape(-1, 5),
                             np.asarray(feats[qu['img']])):
            if det[4] >= det_thresh and _iou(qu['box'], det[:4]) <= 0.5:
                rows.append((det[4], feat))
        rows[1:] = sorted(rows[1:], key=lambda r: -r[0])
        out.append([feat for _, feat in rows])
    return out


def ref_matching(sim):
    """The maximum-weight matching of a (k, n) matrix, by enumeration."""
    k, n = sim.shape
    best, pairs = -np.inf, None
    if k <= n:
        cands = [list(enumerate(p)) for p in permutations(range(n), k)]
    else:
        cands = [[(i, j) for j, i in enumerate(p)]
                 for p in permutations(range(k), n)]
    for cand in cands:
        total = sum(sim[i, j] for i, j in cand)
        if total > best:
            best, pairs = total, cand
    return pairs


def ref_cbgm(contexts, k1, k2):
    """SeqNet's CBGM block, for ``ref_search(rescore=...)``."""

    def rescore(q, kept, name2sim):
        sims = np.concatenate(list(name2sim.values()) + [np.zeros(0)])
        imgs = np.concatenate([[g] * len(s) for g, s in name2sim.items()] +
                              [np.zeros(0, int)])
        for g in set(imgs[np.argsort(-sims, kind='stable')[:k1]].tolist()):
            feat_g = kept[g][1]
            ctx = contexts[q][:k2]
            sim = np.array([[np.dot(p, f) for f in feat_g] for p in ctx])
            pairs = ref_matching(sim)
            max_val = max(sim[i, j] for i, j in pairs)
            for i, j in pairs:
                if i == 0:  # the query box
                    name2sim[g][j] = max_val

    return rescore


@pytest.mark.parametrize('seed,listed,cross,k1,k2', [
    (0, False, False, 30, 4), (1, True, False, 10, 3),
    (2, False, True, 30, 4), (3, True, False, 3, 2), (4, False, False, 5, 5),
    (5, True, True, 10, 3)
])
def test_equals_reference(seed, listed, cross, k1, k2):
    images, queries, dets, feats, qfeats = random_case(seed, listed=listed)
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    ctx = build_query_context(protocol, det_img, d, f, qfeats)
    got = eval_search(protocol, det_img, d, f, qfeats, cross_camera=cross,
                      cbgm=CBGM(ctx, k1, k2))
    ref = ref_search(images, queries, dets, feats, qfeats,
                     cross_camera=cross,
                     rescore=ref_cbgm(ref_contexts(images, queries, dets,
                                                   feats, qfeats), k1, k2))
    np.testing.assert_allclose(got['aps'], ref['aps'], rtol=0, atol=1e-12)
    for k in ('mAP', 'top-1', 'top-5', 'top-10'):
        assert got[k] == pytest.approx(ref[k], abs=1e-12), k
    plain = eval_search(protocol, det_img, d, f, qfeats, cross_camera=cross)
    assert not np.array_equal(plain['aps'], got['aps'])  # CBGM did act


def test_evaluate_person_search_adds_cbgm_figures():
    images, queries, dets, feats, qfeats = random_case(6, listed=False)
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    cb = CBGM(build_query_context(protocol, det_img, d, f, qfeats), 30, 4)
    kw = dict(cross_camera='both', protocols=('gt_box', 'best_iou_det'))
    plain = evaluate_person_search(protocol, det_img, d, f, qfeats, **kw)
    got = evaluate_person_search(protocol, det_img, d, f, qfeats, cbgm=cb,
                                 **kw)
    # the figures without CBGM are those of before, to the bit
    assert {k: got[k] for k in plain} == plain
    extra = sorted(set(got) - set(plain))
    assert extra == sorted(
        f'{m}{s}_cbgm' for m in ('mAP', 'top-1', 'top-5', 'top-10')
        for s in ('', '_cross_cam'))
    for cross, s in ((False, ''), (True, '_cross_cam')):
        one = eval_search(protocol, det_img, d, f, qfeats,
                          cross_camera=cross, cbgm=cb)
        assert got[f'mAP{s}_cbgm'] == one['mAP']
        assert got[f'top-1{s}_cbgm'] == one['top-1']

# Copyright (c) OpenMMLab. All rights reserved.
"""PersonSearchMetric equals the functional evaluation, in any sample order."""
import numpy as np
import pytest
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmps.evaluation import PersonSearchMetric
from mmps.evaluation.functional import (CBGM, PersonSearchProtocol,
                                        build_query_context,
                                        evaluate_person_search,
                                        load_search_results, rank_search,
                                        search_results_context)
from mmps.registry import METRICS

from ..test_functional.utils import flat_dets, make_infos, random_case
from .samples import samples_of


def to_samples(images, queries, dets, feats, qfeats):
    """Model outputs as ``DetDataSample.to_dict()`` gives them."""
    return samples_of(make_infos(images, queries), dets, feats, qfeats)


def functional(case, cbgm=None, **kw):
    """The functional evaluation of a case; ``cbgm=(k1, k2)``: with CBGM on
    the context of the query frames' detections."""
    images, queries, dets, feats, qfeats = case
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    d, f = d.astype(np.float32), f.astype(np.float32)
    if cbgm is not None:
        ctx = build_query_context(protocol, det_img, d, f, qfeats,
                                  det_thresh=kw.get('det_thresh', 0.5))
        kw['cbgm'] = CBGM(ctx, *cbgm)
    return evaluate_person_search(protocol, det_img, d, f, qfeats, **kw)


@pytest.mark.parametrize('listed', [True, False])
def test_metric_equals_functional_in_any_order(listed):
    case = random_case(2, listed=listed, quantised=True)
    samples = to_samples(*case)
    expected = functional(case)
    rng = np.random.default_rng(0)
    for trial in range(3):
        metric = PersonSearchMetric()
        order = rng.permutation(len(samples)) if trial else \
            np.arange(len(samples))
        for start in range(0, len(order), 7):  # batches of 7
            metric.process({}, [samples[i] for i in order[start:start + 7]])
        got = metric.evaluate(len(samples))
        assert set(got) == {
            'mAP', 'top-1', 'top-5', 'top-10', 'det_recall', 'det_ap',
            'det_recall_labeled', 'det_ap_labeled'
        }
        for k, v in expected.items():
            assert got[k] == pytest.approx(v, abs=1e-12), k
    assert 0 < expected['mAP'] < 1


def test_det_thresh_cross_camera_and_prefix():
    case = random_case(4, listed=False, quantised=True)
    samples = to_samples(*case)
    metric = METRICS.build(
        dict(
            type='PersonSearchMetric',
            det_thresh=0.3,
            cross_camera='both',
            prefix='ps'))
    metric.process({}, samples)
    got = metric.evaluate(len(samples))
    expected = functional(case, det_thresh=0.3, cross_camera='both')
    assert set(got) == {f'ps/{k}' for k in expected}
    for k, v in expected.items():
        assert got[f'ps/{k}'] == pytest.approx(v, abs=1e-12), k
    # low scores are not stored
    kept = sum(len(r['dets']) for r in metric.results if not r['is_query'])
    assert kept == 0  # results are cleared after evaluate
    metric.process({}, samples)
    kept = sum(len(r['dets']) for r in metric.results if not r['is_query'])
    assert kept == sum(int((np.asarray(d)[:, 4] >= 0.3).sum())
                       for d in case[2] if len(d))
    with pytest.raises(ValueError, match='cross_camera'):
        PersonSearchMetric(cross_camera='sometimes')


def test_data_elements_and_no_queries():
    case = random_case(5, listed=True, quantised=True)
    samples = to_samples(*case)
    elements = []
    for s in samples:
        ds = DetDataSample(metainfo={
            k: v
            for k, v in s.items()
            if k not in ('gt_instances', 'pred_instances')
        })
        ds.gt_instances = InstanceData(**s['gt_instances'])
        ds.pred_instances = InstanceData(**s['pred_instances'])
        elements.append(ds)
    metric = PersonSearchMetric()
    metric.process({}, elements)
    got = metric.evaluate(len(elements))
    expected = functional(case)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    # a gallery-only pass: detection figures, search figures 0
    gallery = [s for s in samples if not s['is_query']]
    metric.process({}, gallery)
    got = metric.evaluate(len(gallery))
    assert got['mAP'] == 0. and got['det_recall'] == expected['det_recall']


def test_results_file_holds_every_detection(tmp_path):
    case = random_case(6, listed=False, quantised=True)
    images, queries, dets, feats, qfeats = case
    samples = to_samples(*case)
    path = str(tmp_path / 'results.npz')
    metric = PersonSearchMetric(results_file=path)
    metric.process({}, samples[::-1])
    got = metric.evaluate(len(samples))
    saved = load_search_results(path)
    det_img, d, f = flat_dets(dets, feats)
    # all detections, also those below det_thresh, in gallery order
    np.testing.assert_array_equal(saved['gallery_det_img'], det_img)
    np.testing.assert_allclose(saved['gallery_dets'], d, rtol=1e-6)
    np.testing.assert_allclose(saved['query_feats'], qfeats, rtol=1e-6)
    assert list(saved['gallery_img_names']) == [
        i['img_name'] for i in make_infos(images, queries)
        if not i['is_query']
    ]
    assert (saved['gallery_dets'][:, 4] < 0.5).any()
    # the file evaluates to what the metric reported
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    again = evaluate_person_search(protocol, saved['gallery_det_img'],
                                   saved['gallery_dets'],
                                   saved['gallery_feats'],
                                   saved['query_feats'])
    for k, v in got.items():
        assert again[k] == pytest.approx(v, abs=1e-12), k


def test_both_protocols_keep_the_query_frames_low_scoring_detections():
    case = random_case(2, listed=False, quantised=True)
    images, queries, dets, feats, qfeats = case
    # low-scoring detections (below det_thresh, above 0.05) are candidates
    # of the best-IoU query under the authors' protocol
    dets = [np.array(row, np.float64).reshape(-1, 5) for row in dets]
    for row in dets[::2]:
        row[:1, 4] = 0.2
    case = images, queries, dets, feats, qfeats
    expected = functional(case, protocols=('gt_box', 'best_iou_det'))
    metric = PersonSearchMetric(protocols=('gt_box', 'best_iou_det'))
    samples = to_samples(*case)
    metric.process({}, samples)
    got = metric.evaluate(len(samples))
    assert {'mAP', 'mAP_ref', 'top-1_ref'} <= set(got)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    assert got['mAP_ref'] != got['mAP']
    with pytest.raises(ValueError, match='protocols'):
        PersonSearchMetric(protocols=('box', ))


@pytest.mark.parametrize('listed', [True, False])
def test_rankings_of_the_first_queries(listed):
    case = random_case(3, listed=listed, quantised=True)
    images, queries, dets, feats, qfeats = case
    samples = to_samples(*case)
    for s in samples:
        s['img_path'] = f'{s["img_name"]}#{s.get("query_id", "")}'
    metric = PersonSearchMetric()
    metric.process({}, samples)
    metric.evaluate(len(samples))
    assert metric.rankings == []  # none asked for
    # rankings with a lower threshold than the metric's change no figure
    metric.keep_rankings(3, topk=5, det_thresh=0.3)
    metric.process({}, samples[::-1])
    got = metric.evaluate(len(samples))
    expected = functional(case)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    ref = rank_search(protocol, det_img, d.astype(np.float32),
                      f.astype(np.float32), qfeats, queries=[0, 1, 2], k=5,
                      det_thresh=0.3)
    assert [r['query_id'] for r in metric.rankings] == [0, 1, 2]
    for r, e in zip(metric.rankings, ref):
        assert r['img_path'].endswith(f'#{r["query_id"]}')
        assert r['person_id'] == queries[r['query_id']]['pid']
        hits = r['hits']
        assert [h['rank'] for h in hits] == list(range(1, len(e.img) + 1))
        assert [h['img_id'] for h in hits] == e.img.tolist()
        assert [h['img_path'] for h in hits] == [
            f'img{g:04d}.jpg#' for g in e.img.tolist()
        ]
        assert [h['match'] for h in hits] == e.matches.tolist()
        np.testing.assert_array_equal([h['box'] for h in hits], e.boxes)
        np.testing.assert_array_equal([h['similarity'] for h in hits],
                                      e.sims)
    assert any(h['match'] for r in metric.rankings for h in r['hits'])


@pytest.mark.parametrize('listed', [True, False])
def test_cbgm_equals_functional(listed):
    case = random_case(7, listed=listed)
    samples = to_samples(*case)
    # SeqNet's k1 / k2 of the dataset: CUHK-SYSU for listed galleries, PRW
    # for a full gallery over several cameras
    k = (10, 3) if listed else (30, 4)
    metric = PersonSearchMetric(cbgm=True, cross_camera='both')
    metric.process({}, samples[::-1])
    got = metric.evaluate(len(samples))
    expected = functional(case, cbgm=k, cross_camera='both')
    assert set(got) == set(expected)
    assert {'mAP_cbgm', 'top-1_cbgm', 'mAP_cross_cam_cbgm'} <= set(got)
    for key, v in expected.items():
        assert got[key] == pytest.approx(v, abs=1e-12), key
    assert got['mAP_cbgm'] != got['mAP']
    # without CBGM: the same figures as before
    plain = functional(case, cross_camera='both')
    for key, v in plain.items():
        assert got[key] == v, key
    # other k1 / k2, a lower threshold
    metric = PersonSearchMetric(cbgm=True, cbgm_k1=3, cbgm_k2=2,
                                det_thresh=0.3)
    metric.process({}, samples)
    got = metric.evaluate(len(samples))
    expected = functional(case, cbgm=(3, 2), det_thresh=0.3)
    for key, v in expected.items():
        assert got[key] == pytest.approx(v, abs=1e-12), key
    with pytest.raises(ValueError, match='cbgm_k1'):
        PersonSearchMetric(cbgm=True, cbgm_k1=0)


def test_results_file_holds_the_query_context(tmp_path):
    case = random_case(8, listed=False)
    images, queries, dets, feats, qfeats = case
    path = str(tmp_path / 'results.npz')
    metric = PersonSearchMetric(results_file=path, cbgm=True)
    samples = to_samples(*case)
    metric.process({}, samples)
    got = metric.evaluate(len(samples))
    saved = load_search_results(path)
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    ctx = build_query_context(protocol, det_img, d.astype(np.float32),
                              f.astype(np.float32), qfeats)
    back = search_results_context(saved, source=path)
    for name in ('query', 'dets', 'feats'):
        np.testing.assert_array_equal(getattr(back, name), getattr(ctx, name))
    # the first row of each query is its box, score 1, its feature
    first = np.flatnonzero(np.r_[True, back.query[1:] != back.query[:-1]])
    np.testing.assert_array_equal(back.query[first],
                                  np.arange(len(queries)))
    np.testing.assert_allclose(back.dets[first, :4],
                               [q['box'] for q in queries], rtol=1e-6)
    assert (back.dets[first, 4] == 1).all()
    np.testing.assert_array_equal(back.feats[first],
                                  qfeats.astype(np.float32))
    assert len(back.query) > len(queries)
    # the file evaluates with CBGM to what the metric reported
    again = evaluate_person_search(
        protocol, saved['gallery_det_img'], saved['gallery_dets'],
        saved['gallery_feats'], saved['query_feats'],
        cbgm=CBGM.for_protocol(back, protocol))
    for k, v in got.items():
        assert again[k] == pytest.approx(v, abs=1e-12), k

# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/eval_search.py on small synthetic roots."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from mmps.datasets import CUHKSYSUDataset, PRWDataset
from mmps.datasets.synthetic import (make_synthetic_cuhk_sysu,
                                     make_synthetic_prw)
from mmps.evaluation.functional import (PersonSearchProtocol,
                                        evaluate_person_search,
                                        save_search_results)
from mmps.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    path = osp.join(ROOT, 'tools', 'analysis_tools', 'eval_search.py')
    spec = importlib.util.spec_from_file_location('eval_search_tool', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def tool():
    register_all_modules()
    return load_tool()


@pytest.fixture(scope='module')
def prw_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('prw-ann')
    make_synthetic_prw(str(root), seed=1, num_images=30,
                       annotations_only=True)
    return str(root)


@pytest.fixture(scope='module')
def cuhk_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('cuhk-ann')
    make_synthetic_cuhk_sysu(str(root), seed=2, num_images=60,
                             annotations_only=True)
    return str(root)


def protocol_of(ds):
    return PersonSearchProtocol.from_data_infos(
        [ds.get_data_info(i) for i in range(len(ds))])


def fake_results(protocol, seed=0, dim=16):
    """Jittered ground truth + spurious boxes; identity features + noise."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(int(protocol.gt_pids.max()) + 2, dim))
    det_img, dets, feats = [], [], []
    for g in range(protocol.num_images):
        a, b = protocol.gt_offsets[g], protocol.gt_offsets[g + 1]
        for box, pid in zip(protocol.gt_boxes[a:b], protocol.gt_pids[a:b]):
            if rng.random() < 0.15:
                continue  # missed
            w, h = box[2] - box[0], box[3] - box[1]
            det_img.append(g)
            dets.append(np.r_[box + rng.normal(0, 0.08, 4) * [w, h, w, h],
                              rng.uniform(0.3, 1)])
            feats.append((protos[pid] if pid >= 0 else rng.normal(
                size=dim)) + rng.normal(0, 0.8, dim))
        det_img.append(g)  # spurious
        dets.append([5, 5, 40, 90, rng.uniform(0, 1)])
        feats.append(rng.normal(size=dim))
    qf = protos[protocol.query_pids] + rng.normal(
        0, 0.4, (protocol.num_queries, dim))
    # the file lists the gallery images in reverse order
    names = protocol.img_names[::-1]
    remap = protocol.num_images - 1 - np.array(det_img)
    return dict(
        gallery_img_names=names,
        gallery_det_img=remap,
        gallery_dets=np.array(dets, np.float32),
        gallery_feats=np.array(feats, np.float32),
        query_feats=qf.astype(np.float32)), np.array(det_img)


def expected_metrics(protocol, arrays, det_img, **kw):
    return evaluate_person_search(protocol, det_img, arrays['gallery_dets'],
                                  arrays['gallery_feats'],
                                  arrays['query_feats'], **kw)


@pytest.mark.parametrize('cross', [False, True])
def test_prw_json_equals_functional(tool, prw_root, tmp_path, capsys, cross):
    protocol = protocol_of(
        PRWDataset(prw_root, split='test', check_images=False))
    arrays, det_img = fake_results(protocol)
    path = str(tmp_path / 'res.npz')
    save_search_results(path, **arrays)
    argv = ['--dataset', 'prw', '--data-root', prw_root, '--results', path,
            '--json-out', str(tmp_path / 'out.json')]
    if cross:
        argv.append('--cross-camera')
    assert tool.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    with open(tmp_path / 'out.json') as f:
        assert json.load(f) == printed
    expected = expected_metrics(protocol, arrays, det_img,
                                cross_camera=cross)
    for k, v in expected.items():
        assert printed[k] == pytest.approx(v, abs=1e-12), k
    assert printed['num_queries'] == protocol.num_queries
    assert 0 < printed['mAP'] < 1 and 0 < printed['det_ap'] < 1


def test_prw_both_protocols(tool, prw_root, tmp_path, capsys):
    protocol = protocol_of(
        PRWDataset(prw_root, split='test', check_images=False))
    arrays, det_img = fake_results(protocol)
    path = str(tmp_path / 'res.npz')
    save_search_results(path, **arrays)
    assert tool.main(['--dataset', 'prw', '--data-root', prw_root,
                      '--results', path, '--protocol', 'both']) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = expected_metrics(protocol, arrays, det_img,
                                protocols=('gt_box', 'best_iou_det'))
    assert 'mAP_ref' in expected and 'top-10_ref' in expected
    for k, v in expected.items():
        assert printed[k] == pytest.approx(v, abs=1e-12), k
    assert printed['protocols'] == ['gt_box', 'best_iou_det']


def test_cuhk_gallery_sizes(tool, cuhk_root, tmp_path, capsys):
    for size in (50, -1):
        protocol = protocol_of(
            CUHKSYSUDataset(cuhk_root, split='test', gallery_size=size,
                            check_images=False))
        assert (protocol.gallery_offsets is None) == (size == -1)
        arrays, det_img = fake_results(protocol, seed=3)
        path = str(tmp_path / f'res{size}.npz')
        save_search_results(path, **arrays)
        assert tool.main([
            '--dataset', 'cuhk-sysu', '--data-root', cuhk_root, '--results',
            path, '--gallery-size', str(size), '--det-thresh', '0.4'
        ]) == 0
        printed = json.loads(capsys.readouterr().out)
        expected = expected_metrics(protocol, arrays, det_img,
                                    det_thresh=0.4)
        for k, v in expected.items():
            assert printed[k] == pytest.approx(v, abs=1e-12), k


def test_bad_results_files(tool, prw_root, tmp_path, capsys):
    protocol = protocol_of(
        PRWDataset(prw_root, split='test', check_images=False))
    good, _ = fake_results(protocol)

    def run(arrays, name):
        path = str(tmp_path / name)
        np.savez(path, **arrays)
        rc = tool.main(['--dataset', 'prw', '--data-root', prw_root,
                        '--results', path])
        err = capsys.readouterr().err
        assert rc == 1
        assert path in err
        return err

    bad = dict(good)
    del bad['query_feats']
    assert 'query_feats' in run(bad, 'missing.npz')
    bad = dict(good, gallery_img_names=np.array(
        ['nope.jpg'] + list(good['gallery_img_names'][1:])))
    err = run(bad, 'unknown.npz')
    assert 'gallery_img_names' in err and 'nope.jpg' in err
    bad = dict(good, query_feats=good['query_feats'][:-1])
    err = run(bad, 'queries.npz')
    assert 'query_feats' in err and str(protocol.num_queries) in err
    bad = dict(good, gallery_dets=good['gallery_dets'][:, :4])
    assert 'gallery_dets' in run(bad, 'dets.npz')
    bad = dict(good, gallery_feats=good['gallery_feats'][1:])
    assert 'gallery_feats' in run(bad, 'feats.npz')
    bad = dict(good, gallery_det_img=good['gallery_det_img'] + 1000)
    assert 'gallery_det_img' in run(bad, 'index.npz')
    bad = dict(good, query_feats=good['query_feats'][:, :3])
    assert 'query_feats' in run(bad, 'dims.npz')
    missing = str(tmp_path / 'absent.npz')
    assert tool.main(['--dataset', 'prw', '--data-root', prw_root,
                      '--results', missing]) == 1
    assert 'not found' in capsys.readouterr().err


@pytest.mark.parametrize('dataset', ['prw', 'cuhk-sysu'])
def test_cbgm_on_a_file_written_by_the_metric(tool, prw_root, cuhk_root,
                                              tmp_path, capsys, dataset):
    from mmps.evaluation import PersonSearchMetric
    from ..test_evaluation.test_metrics.samples import samples_of
    root = prw_root if dataset == 'prw' else cuhk_root
    ds = PRWDataset(prw_root, split='test', check_images=False) \
        if dataset == 'prw' else CUHKSYSUDataset(
            cuhk_root, split='test', gallery_size=50, check_images=False)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    protocol = PersonSearchProtocol.from_data_infos(infos)
    assert (protocol.query_img >= 0).all()  # query frames are gallery images
    arrays, det_img = fake_results(protocol, seed=5)
    per_img = [np.flatnonzero(det_img == g)
               for g in range(protocol.num_images)]
    path = str(tmp_path / 'res.npz')
    metric = PersonSearchMetric(results_file=path, cbgm=True)
    metric.process({}, samples_of(
        infos, [arrays['gallery_dets'][i] for i in per_img],
        [arrays['gallery_feats'][i] for i in per_img], arrays['query_feats']))
    reported = metric.evaluate(len(infos))
    assert 'mAP_cbgm' in reported
    capsys.readouterr()  # the metric's log
    argv = ['--dataset', dataset, '--data-root', root, '--results', path,
            '--cbgm']
    if dataset == 'cuhk-sysu':
        argv += ['--gallery-size', '50']
    assert tool.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    for k, v in reported.items():
        assert printed[k] == pytest.approx(v, abs=1e-12), k
    k1, k2 = (30, 4) if dataset == 'prw' else (10, 3)
    assert (printed['cbgm_k1'], printed['cbgm_k2']) == (k1, k2)
    # other k1 / k2: other figures, the same without CBGM
    assert tool.main(argv + ['--cbgm-k1', '2', '--cbgm-k2', '2']) == 0
    other = json.loads(capsys.readouterr().out)
    assert other['mAP'] == printed['mAP']
    assert (other['cbgm_k1'], other['cbgm_k2']) == (2, 2)
    assert tool.main(argv + ['--cbgm-k1', '0']) == 1
    assert 'k1 and k2 must be >= 1' in capsys.readouterr().err


def test_cbgm_needs_the_query_context(tool, prw_root, tmp_path, capsys):
    protocol = protocol_of(
        PRWDataset(prw_root, split='test', check_images=False))
    arrays, _ = fake_results(protocol)
    path = str(tmp_path / 'res.npz')
    save_search_results(path, **arrays)  # no query_ctx_* fields
    argv = ['--dataset', 'prw', '--data-root', prw_root, '--results', path]
    assert tool.main(argv) == 0  # loads without them
    capsys.readouterr()
    assert tool.main(argv + ['--cbgm']) == 1
    err = capsys.readouterr().err
    assert f'eval_search: error: {path}: CBGM needs the query context' in err
    for field in ('query_ctx_query', 'query_ctx_dets', 'query_ctx_feats'):
        assert field in err

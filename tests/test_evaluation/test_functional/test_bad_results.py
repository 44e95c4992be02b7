# Copyright (c) OpenMMLab. All rights reserved.
"""Bad search results: every case raises an error naming the file (or the
argument) and the field."""
import importlib.util
import os.path as osp

import numpy as np
import pytest

from mmps.datasets import PRWDataset
from mmps.datasets.synthetic import make_synthetic_prw
from mmps.evaluation.functional import (SEARCH_CONTEXT_FIELDS,
                                        PersonSearchProtocol, QueryContext,
                                        SearchResultsError,
                                        align_search_results, eval_detection,
                                        eval_search, load_search_results,
                                        save_search_results,
                                        search_results_context)
from mmps.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


@pytest.fixture(scope='module')
def protocol_root(tmp_path_factory):
    register_all_modules()
    root = str(tmp_path_factory.mktemp('prw-ann'))
    make_synthetic_prw(root, seed=1, num_images=20, annotations_only=True)
    ds = PRWDataset(root, split='test', check_images=False)
    protocol = PersonSearchProtocol.from_data_infos(
        [ds.get_data_info(i) for i in range(len(ds))])
    return protocol, root


def _good(protocol, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    det_img = np.repeat(np.arange(protocol.num_images), 2)
    m = len(det_img)
    boxes = np.tile([[5., 5., 40., 90.]], (m, 1))
    return dict(gallery_img_names=protocol.img_names,
                gallery_det_img=det_img,
                gallery_dets=np.c_[boxes,
                                   rng.uniform(0, 1, m)].astype(np.float32),
                gallery_feats=rng.normal(size=(m, dim)).astype(np.float32),
                query_feats=rng.normal(size=(protocol.num_queries,
                                             dim)).astype(np.float32))


def _set(arrays, field, row, col, value):
    arr = arrays[field].copy()
    arr[row, col] = value
    return dict(arrays, **{field: arr})


def _bad_cases(good):
    m = len(good['gallery_det_img'])
    nan, inf = float('nan'), float('inf')
    without = dict(good)
    del without['gallery_feats']
    return {
        'missing field': (without, r"missing field\(s\) \['gallery_feats'\]"),
        'names not str': (dict(good, gallery_img_names=np.arange(3)),
                          'gallery_img_names must be a 1-d array of str'),
        'repeated name':
        (dict(good,
              gallery_img_names=np.r_[good['gallery_img_names'][:2],
                                      good['gallery_img_names'][:1]]),
         'gallery_img_names repeats a name'),
        'det_img float': (dict(good,
                               gallery_det_img=good['gallery_det_img'] * 1.),
                          'gallery_det_img must be a 1-d int'),
        'det_img out of range':
        (dict(good, gallery_det_img=good['gallery_det_img'] + 1000),
         'gallery_det_img must index'),
        'dets 4 columns': (dict(good,
                                gallery_dets=good['gallery_dets'][:, :4]),
                           rf'gallery_dets must be \({m}, 5\)'),
        'dets fewer rows': (dict(good, gallery_dets=good['gallery_dets'][1:]),
                            rf'gallery_dets must be \({m}, 5\)'),
        'feats fewer rows': (dict(good,
                                  gallery_feats=good['gallery_feats'][1:]),
                             rf'gallery_feats must be \({m}, D\)'),
        'feats 1-d': (dict(good, gallery_feats=good['gallery_feats'][:, 0]),
                      rf'gallery_feats must be \({m}, D\)'),
        'query feats int': (dict(good, query_feats=np.ones(
            (3, 4), int)), r'query_feats must be \(Q, D\) float'),
        'query dims': (dict(good, query_feats=good['query_feats'][:, :3]),
                       'query_feats has 3 dims but gallery_feats 4'),
        'nan score': (_set(good, 'gallery_dets', 3, 4, nan),
                      r'gallery_dets has 1 row\(s\) with NaN or Inf values, '
                      r'e\.g\. row\(s\) \[3\]'),
        'inf box': (_set(good, 'gallery_dets', 0, 1, -inf),
                    r'gallery_dets has 1 row\(s\) with NaN or Inf'),
        'nan feat': (_set(good, 'gallery_feats', [2, 5], 0, nan),
                     r'gallery_feats has 2 row\(s\) with NaN or Inf values, '
                     r'e\.g\. row\(s\) \[2, 5\]'),
        'inf query': (_set(good, 'query_feats', 1, 3, inf),
                      r'query_feats has 1 row\(s\) with NaN or Inf'),
    }


CASES = [
    'missing field', 'names not str', 'repeated name', 'det_img float',
    'det_img out of range', 'dets 4 columns', 'dets fewer rows',
    'feats fewer rows', 'feats 1-d', 'query feats int', 'query dims',
    'nan score', 'inf box', 'nan feat', 'inf query'
]


@pytest.mark.parametrize('case', CASES)
def test_load_rejects_bad_fields(protocol_root, tmp_path, case):
    arrays, message = _bad_cases(_good(protocol_root[0]))[case]
    path = str(tmp_path / 'res.npz')
    np.savez(path, **arrays)
    with pytest.raises(SearchResultsError, match=message) as e:
        load_search_results(path)
    assert str(e.value).startswith(f'{path}: ')
    # save checks the same way (it converts names to str, indices to int)
    if case not in ('missing field', 'names not str', 'det_img float'):
        with pytest.raises(SearchResultsError, match=message):
            save_search_results(str(tmp_path / 'out.npz'), **arrays)
        assert not osp.exists(tmp_path / 'out.npz')


def test_load_unreadable_files(tmp_path):
    with pytest.raises(SearchResultsError, match='results file not found'):
        load_search_results(str(tmp_path / 'absent.npz'))
    for content in (b'', b'garbage'):
        path = tmp_path / 'res.npz'
        path.write_bytes(content)
        with pytest.raises(SearchResultsError,
                           match=f'{path}: not a readable .npz file'):
            load_search_results(str(path))
    path = str(tmp_path / 'objects.npz')  # pickled arrays are refused
    np.savez(path, **{k: np.array([None]) for k in ('gallery_img_names', )})
    with pytest.raises(SearchResultsError, match=path):
        load_search_results(path)


def test_align_rejects_results_of_another_dataset(protocol_root, tmp_path):
    protocol = protocol_root[0]
    good = _good(protocol)
    path = str(tmp_path / 'res.npz')
    save_search_results(path, **good)
    det_img, dets, feats, qf = align_search_results(load_search_results(path),
                                                    protocol,
                                                    source=path)
    assert len(det_img) == len(dets) == len(feats)
    with pytest.raises(SearchResultsError,
                       match=f'{path}: query_feats has 2 rows but the '
                       f'dataset has {protocol.num_queries} queries'):
        align_search_results(dict(good, query_feats=good['query_feats'][:2]),
                             protocol,
                             source=path)
    names = good['gallery_img_names'].copy()
    names[0] = 'elsewhere.jpg'
    with pytest.raises(SearchResultsError,
                       match=f'{path}: gallery_img_names has 1 name.*'
                       'elsewhere.jpg'):
        align_search_results(dict(good, gallery_img_names=names),
                             protocol,
                             source=path)


@pytest.mark.parametrize('field,arg', [('gallery_dets', 'dets'),
                                       ('gallery_feats', 'det_feats'),
                                       ('query_feats', 'query_feats')])
def test_functional_rejects_non_finite_inputs(protocol_root, field, arg):
    """The in-memory path (the metric) checks what the file path checks."""
    protocol = protocol_root[0]
    good = _good(protocol)
    bad = _set(good, field, 1, 0, float('nan'))
    args = [
        good['gallery_det_img'], bad['gallery_dets'], bad['gallery_feats'],
        bad['query_feats']
    ]
    with pytest.raises(ValueError,
                       match=rf'{arg} has 1 row\(s\) with NaN or Inf'):
        eval_search(protocol, *args)
    if field == 'gallery_dets':
        with pytest.raises(ValueError, match='dets has 1 row'):
            eval_detection(protocol, *args[:2])


def test_eval_search_tool_reports_non_finite_features(protocol_root, tmp_path,
                                                      capsys):
    protocol, root = protocol_root
    path = str(tmp_path / 'res.npz')
    np.savez(path, **_set(_good(protocol), 'gallery_feats', 0, 0, np.nan))
    spec = importlib.util.spec_from_file_location(
        'eval_search_tool',
        osp.join(ROOT, 'tools', 'analysis_tools', 'eval_search.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rc = tool.main(
        ['--dataset', 'prw', '--data-root', root, '--results', path])
    err = capsys.readouterr().err
    assert rc == 1
    assert f'eval_search: error: {path}: gallery_feats has 1 row(s) with ' \
        'NaN or Inf' in err


def _with_context(good, seed=1):
    """``good`` plus a context: per query its box row and one or two more."""
    rng = np.random.default_rng(seed)
    Q, dim = good['query_feats'].shape
    query = np.sort(np.r_[np.arange(Q), rng.integers(0, Q, Q)])
    K = len(query)
    dets = np.c_[np.tile([[5., 5., 40., 90.]], (K, 1)),
                 rng.uniform(0.5, 1, K)].astype(np.float32)
    return dict(good, query_ctx_query=query, query_ctx_dets=dets,
                query_ctx_feats=rng.normal(size=(K, dim)).astype(np.float32))


def test_context_fields(protocol_root, tmp_path):
    good = _good(protocol_root[0])
    path = str(tmp_path / 'res.npz')
    # without the context: loads as before; CBGM names what is missing
    save_search_results(path, **good)
    plain = load_search_results(path)
    assert not set(SEARCH_CONTEXT_FIELDS) & set(plain)
    with pytest.raises(SearchResultsError,
                       match=f"{path}: CBGM needs the query context, but the "
                       r"file has no field\(s\) \['query_ctx_query', "
                       r"'query_ctx_dets', 'query_ctx_feats'\]"):
        search_results_context(plain, source=path)
    # with it: written by save_search_results, read back as it was
    full = _with_context(good)
    ctx = QueryContext(full['query_ctx_query'], full['query_ctx_dets'],
                       full['query_ctx_feats'])
    save_search_results(path, **good, query_context=ctx)
    back = search_results_context(load_search_results(path), source=path)
    for name in ('query', 'dets', 'feats'):
        np.testing.assert_array_equal(getattr(back, name), getattr(ctx, name))
    K = len(ctx.query)
    bad = {
        'some fields': (
            {k: v for k, v in full.items() if k != 'query_ctx_feats'},
            r"has \['query_ctx_query', 'query_ctx_dets'\] but not the other"),
        'query float': (dict(full, query_ctx_query=ctx.query * 1.),
                        'query_ctx_query must be a 1-d int array'),
        'query out of range': (dict(full, query_ctx_query=ctx.query + 1000),
                               'query_ctx_query must index the rows of '
                               'query_feats'),
        'dets 4 columns': (dict(full, query_ctx_dets=ctx.dets[:, :4]),
                           rf'query_ctx_dets must be \({K}, 5\)'),
        'feats fewer rows': (dict(full, query_ctx_feats=ctx.feats[1:]),
                             rf'query_ctx_feats must be \({K}, D\)'),
        'feats dims': (dict(full, query_ctx_feats=ctx.feats[:, :3]),
                       'query_ctx_feats has 3 dims but query_feats 4'),
        'nan feat': (_set(full, 'query_ctx_feats', 2, 0, np.nan),
                     r'query_ctx_feats has 1 row\(s\) with NaN or Inf'),
        'inf det': (_set(full, 'query_ctx_dets', 0, 4, np.inf),
                    r'query_ctx_dets has 1 row\(s\) with NaN or Inf'),
    }
    for case, (arrays, message) in bad.items():
        np.savez(path, **arrays)
        with pytest.raises(SearchResultsError, match=message):
            load_search_results(path)

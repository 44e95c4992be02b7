# Copyright (c) OpenMMLab. All rights reserved.
"""The fast MAT-5 reader and the records cache of mmps.datasets.native read
what scipy reads, on the files the synthetic generator writes."""
import glob
import os
import os.path as osp

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from mmps.datasets.native import CUHKSYSUReader, PRWReader, cache
from mmps.datasets.native import cuhk_sysu as native_cuhk
from mmps.datasets.native.matfile import (LeafColumns, MatUnsupported,
                                          iter_struct_array, read_mat)
from .utils import copy_root


def assert_same(a, b, where='value'):
    """Deep equality of loadmat outputs: types, dtypes, shapes, values."""
    assert type(a) is type(b), where
    if not isinstance(a, np.ndarray):
        assert a == b, where
        return
    assert (a.dtype, a.shape) == (b.dtype, b.shape), where
    if a.dtype.names:
        for f in a.dtype.names:
            for i, (x, y) in enumerate(zip(a[f].ravel(), b[f].ravel())):
                assert_same(x, y, f'{where}.{f}[{i}]')
    elif a.dtype == object:
        for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
            assert_same(x, y, f'{where}[{i}]')
    else:
        np.testing.assert_array_equal(a, b, err_msg=where)


def mat_files(truth):
    return sorted(glob.glob(osp.join(truth.root, '**', '*.mat'),
                            recursive=True))


def test_read_mat_equals_scipy(cuhk_truth, prw_truth, tmp_path):
    files = mat_files(cuhk_truth) + mat_files(prw_truth)[:40]
    # the same variables written by scipy, compressed and not
    testg = [f for f in files if 'TestG' in f][0]
    for compress in (False, True):
        path = str(tmp_path / f'scipy_{compress}.mat')
        savemat(path, {k: v for k, v in loadmat(testg).items()
                       if not k.startswith('__')}, do_compression=compress)
        files.append(path)
    for path in files:
        ours, ref = read_mat(path), loadmat(path)
        assert set(ours) == {k for k in ref if not k.startswith('__')}, path
        for k in ours:
            assert_same(ours[k], ref[k], f'{path}: {k}')


@pytest.mark.parametrize('compress', [None, False, True])
def test_struct_columns_equal_scipy(cuhk_truth, tmp_path, compress):
    path = [f for f in mat_files(cuhk_truth) if 'TestG' in f][0]
    var = osp.basename(path)[:-4]
    if compress is not None:  # scipy's own bytes
        ref = loadmat(path)[var]
        path = str(tmp_path / 'x.mat')
        savemat(path, {var: ref}, do_compression=compress)
    ref = loadmat(path)[var]
    items = list(iter_struct_array(path, var, columns=['Gallery']))
    assert len(items) == ref.size
    for item, r in zip(items, ref.reshape(-1)):
        assert_same(item['Query'], r['Query'])
        g, rg = item['Gallery'], r['Gallery']
        assert isinstance(g, LeafColumns) and g.size == rg.size
        assert g.strings['imname'].tolist() == [
            str(v[0]) for v in rg['imname'].reshape(-1)]
        for i, e in enumerate(rg.reshape(-1)):
            for f in ('idlocate', 'ishard'):
                got = g.numbers(f, i)
                assert got.shape == e[f].shape
                np.testing.assert_array_equal(got, e[f])


def test_unsupported_files_are_left_to_scipy(tmp_path):
    path = str(tmp_path / 'c.mat')
    savemat(path, {'z': np.array([[1 + 2j]])})
    with pytest.raises(MatUnsupported):
        read_mat(path)
    with pytest.raises(MatUnsupported):
        list(iter_struct_array(path, 'z'))


def _scipy_only(monkeypatch):
    def refuse(path, var):
        raise MatUnsupported('test: the scipy path')
    monkeypatch.setattr(native_cuhk, '_fast_items', refuse)


@pytest.mark.parametrize('size', ['each', None])
def test_fast_records_equal_scipy_records(cuhk_truth, monkeypatch, size):
    monkeypatch.setenv('MMPS_CACHE', '0')
    sizes = sorted(cuhk_truth.galleries) if size == 'each' else [None]
    for s in sizes:
        fast = CUHKSYSUReader(cuhk_truth.root, s).load_test_records()
        with monkeypatch.context() as m:
            _scipy_only(m)
            ref = CUHKSYSUReader(cuhk_truth.root, s).load_test_records()
        for a, b in zip(fast[0], ref[0]):
            assert a['name'] == b['name']
            np.testing.assert_array_equal(a['boxes'], b['boxes'])
            np.testing.assert_array_equal(a['person_ids'], b['person_ids'])
        assert len(fast[1]) == len(ref[1])
        for a, b in zip(fast[1], ref[1]):
            assert (a['name'], a['person_id'], a['where']) == \
                (b['name'], b['person_id'], b['where'])
            np.testing.assert_array_equal(a['box'], b['box'])
            if s is None:
                assert a['gallery_idx'] is None is b['gallery_idx']
            else:
                np.testing.assert_array_equal(a['gallery_idx'],
                                              b['gallery_idx'])


def _records(reader):
    gallery, queries = reader.load_test_records()
    return ([(g['name'], g['boxes'].tolist(), g['person_ids'].tolist())
             for g in gallery],
            [(q['name'], q['box'].tolist(), q['person_id'],
              None if q['gallery_idx'] is None else q['gallery_idx'].tolist())
             for q in queries])


def test_cache_hits_and_invalidates(cuhk_truth, prw_truth, tmp_path,
                                    monkeypatch):
    monkeypatch.setenv('MMPS_CACHE_DIR', str(tmp_path / 'cache'))
    root = copy_root(cuhk_truth, tmp_path / 'r')
    size = sorted(cuhk_truth.galleries)[0]
    first = _records(CUHKSYSUReader(root, size))
    entries = os.listdir(tmp_path / 'cache' / 'annotations')
    assert len(entries) == 1 and entries[0].endswith('.npz')
    assert cache.cache_dir().startswith(str(tmp_path / 'cache'))
    # a hit reads no annotation file
    with monkeypatch.context() as m:
        m.setattr(CUHKSYSUReader, '_read_test',
                  lambda self: pytest.fail('cache miss'))
        assert _records(CUHKSYSUReader(root, size)) == first
    # an edited file misses the cache (and gives the edited records)
    path = osp.join(root, 'annotation', 'test', 'train_test',
                    f'TestG{size}.mat')
    mat = loadmat(path)
    var = mat[f'TestG{size}']
    var[0, 0]['Query'][0, 0]['idname'] = np.array(['p999999'])
    savemat(path, {f'TestG{size}': var})
    edited = _records(CUHKSYSUReader(root, size))
    assert edited[1][0][2] == 999999 and edited[1][1:] == first[1][1:]
    assert len(os.listdir(tmp_path / 'cache' / 'annotations')) == 2
    assert not [f for f in os.listdir(tmp_path / 'cache' / 'annotations')
                if f.endswith('.tmp')]
    # PRW too; and MMPS_CACHE=0 turns the cache off
    prw = _records(PRWReader(prw_truth.root))
    monkeypatch.setenv('MMPS_CACHE', '0')
    assert cache.cache_dir() is None
    assert _records(PRWReader(prw_truth.root)) == prw
    assert len(os.listdir(tmp_path / 'cache' / 'annotations')) == 3


def test_broken_cache_entry_is_rebuilt(cuhk_truth, tmp_path, monkeypatch):
    monkeypatch.setenv('MMPS_CACHE_DIR', str(tmp_path / 'cache'))
    size = sorted(cuhk_truth.galleries)[0]
    first = _records(CUHKSYSUReader(cuhk_truth.root, size))
    folder = tmp_path / 'cache' / 'annotations'
    entry = folder / os.listdir(folder)[0]
    entry.write_bytes(b'not an npz file')
    assert _records(CUHKSYSUReader(cuhk_truth.root, size)) == first
    with np.load(entry) as data:  # rewritten
        assert 'img_names' in data.files

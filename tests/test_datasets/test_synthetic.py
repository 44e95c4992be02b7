# Copyright (c) OpenMMLab. All rights reserved.
"""The synthetic dataset generator writes exactly the native CUHK-SYSU / PRW
files that other person-search codebases read.

The readers below are independent of mmps's loaders: they follow the reading
code of the field's common implementations (SeqNet style), so a generator bug
cannot be hidden by a matching loader bug.
"""
import glob
import io
import os
import os.path as osp
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from scipy.io import loadmat, savemat

from mmps.datasets.synthetic import (REAL_SIZES, make_synthetic_cuhk_sysu,
                                     make_synthetic_prw)
from mmps.datasets.synthetic import mat5

SMALL = dict(num_images=30, num_ids=12)

# --------------------------------------------------------------------------
# independent readers (SeqNet style)
# --------------------------------------------------------------------------


def read_cuhk(root, gallery_size):
    ann = osp.join(root, 'annotation')
    all_imgs = loadmat(osp.join(ann, 'Images.mat'))['Img'].squeeze()
    name_to_boxes, order = {}, []
    for img_name, _, boxes in all_imgs:
        img_name = str(img_name[0])
        boxes = np.asarray([b[0] for b in boxes[0]]).reshape(-1, 4)  # xywh
        boxes[:, 2:] += boxes[:, :2]
        name_to_boxes[img_name] = boxes.astype(np.int32)
        order.append(img_name)
    name_to_pids = {
        n: -np.ones(len(b), np.int64)
        for n, b in name_to_boxes.items()
    }
    pool = [
        str(a[0])
        for a in loadmat(osp.join(ann, 'pool.mat'))['pool'].squeeze()
    ]

    def set_pid(img_name, box, pid):
        box = box.squeeze().astype(np.int32)
        box[2:] += box[:2]
        match = np.flatnonzero((name_to_boxes[img_name] == box).all(axis=1))
        assert len(match) == 1, (img_name, box)
        name_to_pids[img_name][match[0]] = pid

    train = loadmat(osp.join(ann, 'test/train_test/Train.mat'))['Train']
    train = train.squeeze()
    for index, item in enumerate(train):
        idname = str(item[0, 0][0][0])
        n_appear = float(item[0, 0][1].squeeze())
        scenes = item[0, 0][2].squeeze()
        assert len(scenes) == n_appear >= 2
        for img_name, box, _ in scenes:
            set_pid(str(img_name[0]), box, int(idname[1:]))

    var = f'TestG{gallery_size}'
    protoc = loadmat(osp.join(ann, 'test/train_test', var + '.mat'))[var]
    protoc = protoc.squeeze()
    queries, galleries = [], []
    for item in protoc:
        q_name = str(item['Query'][0, 0][0][0])
        q_box = item['Query'][0, 0][1].squeeze().astype(np.int32)
        idname = str(item['Query'][0, 0][3][0])
        pid = int(idname[1:])
        set_pid(q_name, q_box.copy(), pid)
        q_box[2:] += q_box[:2]
        queries.append(dict(img=q_name, box=q_box, pid=pid))
        gallery, seen_distractor = [], False
        for im_name, box, _ in item['Gallery'].squeeze():
            im_name = str(im_name[0])
            if box.size == 0:  # distractor
                seen_distractor = True
            else:
                assert not seen_distractor, 'targets must come first'
                set_pid(im_name, box, pid)
            gallery.append(im_name)
        galleries.append(gallery)
    return dict(order=order,
                boxes=name_to_boxes,
                pids=name_to_pids,
                pool=pool,
                queries=queries,
                galleries=galleries)


def read_prw(root):

    def names(fname, var):
        imgs = loadmat(osp.join(root, fname))[var]
        return [img[0][0] + '.jpg' for img in imgs]

    train, test = names('frame_train.mat',
                        'img_index_train'), names('frame_test.mat',
                                                  'img_index_test')
    boxes, pids, keys = {}, {}, {}
    for name in train + test:
        anno = loadmat(osp.join(root, 'annotations', name + '.mat'))
        box_key = 'box_new'
        if box_key not in anno:
            box_key = 'anno_file'
        keys[name] = box_key
        b = anno[box_key][:, 1:].copy()
        b[:, 2:] += b[:, :2]
        boxes[name] = b
        ids = anno[box_key][:, 0].astype(np.int64)
        ids[ids == -2] = -1
        pids[name] = ids
    queries = []
    with open(osp.join(root, 'query_info.txt'), 'rb') as f:
        for line in f.readlines():
            linelist = str(line, 'utf-8').split(' ')
            pid = int(linelist[0])
            x, y, w, h = (float(v) for v in linelist[1:5])
            queries.append(
                dict(img=linelist[5][:-2] + '.jpg',
                     box=np.array([x, y, x + w, y + h]),
                     pid=pid))
    return dict(train=train,
                test=test,
                boxes=boxes,
                pids=pids,
                queries=queries,
                keys=keys)


def cam_of(name):
    return int(name[1:name.index('s')])


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope='module')
def cuhk(tmp_path_factory):
    root = tmp_path_factory.mktemp('syn_cuhk')
    return make_synthetic_cuhk_sysu(str(root), seed=0, **SMALL)


@pytest.fixture(scope='module')
def prw(tmp_path_factory):
    root = tmp_path_factory.mktemp('syn_prw')
    return make_synthetic_prw(str(root), seed=0, **SMALL)


@pytest.fixture(scope='module')
def cuhk_mid(tmp_path_factory):
    """Large enough for the standard TestG50 and TestG100 files."""
    root = tmp_path_factory.mktemp('syn_cuhk_mid')
    return make_synthetic_cuhk_sysu(str(root),
                                    seed=1,
                                    num_images=180,
                                    num_test_images=120,
                                    num_ids=60,
                                    annotations_only=True)


def annotation_files(root):
    out = {}
    for path in sorted(glob.glob(osp.join(root, '**', '*'), recursive=True)):
        if path.endswith(('.mat', '.txt')):
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


# --------------------------------------------------------------------------
# determinism and counts
# --------------------------------------------------------------------------


@pytest.mark.parametrize('make',
                         [make_synthetic_cuhk_sysu, make_synthetic_prw])
def test_deterministic(make, tmp_path):
    a = make(str(tmp_path / 'a'), seed=7, **SMALL)
    b = make(str(tmp_path / 'b'), seed=7, **SMALL, annotations_only=True)
    c = make(str(tmp_path / 'c'), seed=8, **SMALL, annotations_only=True)
    fa = annotation_files(a.root)
    assert len(fa) >= 4
    assert fa == annotation_files(b.root)  # same bytes, drawn or not
    fc = annotation_files(c.root)
    assert fa.keys() != fc.keys() or any(fa[k] != fc[k] for k in fa)
    assert not glob.glob(osp.join(b.root, '**', '*.jpg'), recursive=True)
    # images are reproducible too
    d = make(str(tmp_path / 'd'), seed=7, **SMALL)
    for name in list(a.images)[:5]:
        sub = 'Image/SSM' if a.dataset == 'cuhk-sysu' else 'frames'
        with open(osp.join(a.root, sub, name), 'rb') as f1, \
                open(osp.join(d.root, sub, name), 'rb') as f2:
            assert f1.read() == f2.read()


@pytest.mark.parametrize('which', ['cuhk', 'prw'])
def test_counts_and_splits(which, request):
    truth = request.getfixturevalue(which)
    assert len(truth.images) == 30
    assert len(truth.test_images) == 12 and len(truth.train_images) == 18
    assert sorted(truth.train_images + truth.test_images) == sorted(
        truth.images)
    for name in truth.test_images:
        assert truth.images[name]['split'] == 'test'
    train_ids, test_ids = truth.pids('train'), truth.pids('test')
    assert len(test_ids) == 5 and len(train_ids) == 7
    assert not set(train_ids) & set(test_ids)
    for split, ids in (('train', train_ids), ('test', test_ids)):
        for pid in ids:
            imgs = [
                n for n, v in truth.images.items()
                if v['split'] == split and pid in v['pids']
            ]
            assert len(imgs) >= 2
            if truth.dataset == 'prw':
                assert len({truth.images[n]['cam'] for n in imgs}) >= 2
    for v in truth.images.values():
        labeled = (v['pids'] > 0).sum()
        assert 2 <= labeled <= 5
        assert (v['pids'] == -1).sum() <= 2
        assert len(set(v['pids'][v['pids'] > 0].tolist())) == labeled
        assert v['pids'].dtype == np.int64 and v['boxes'].dtype == np.float64
    assert any((v['pids'] == -1).any() for v in truth.images.values())
    if truth.dataset == 'cuhk-sysu':
        assert len(truth.queries) == len(test_ids)
        assert sorted(q['pid'] for q in truth.queries) == test_ids
    else:
        pairs = {(q['pid'], truth.images[q['img']]['cam'])
                 for q in truth.queries}
        assert len(pairs) == len(truth.queries)
        want = {(p, v['cam'])
                for v in truth.images.values() if v['split'] == 'test'
                for p in v['pids'].tolist() if p > 0}
        assert pairs == want


@pytest.mark.parametrize('which', ['cuhk', 'prw'])
def test_boxes_and_scales(which, request):
    truth = request.getfixturevalue(which)
    heights = []
    for v in truth.images.values():
        b = v['boxes']
        assert (b == np.round(b)).all()
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= v['width']).all() and (b[:, 3] <= v['height']).all()
        assert (b[:, 2:] - b[:, :2] >= 8).all()
        heights += (b[:, 3] - b[:, 1]).tolist()
    assert max(heights) / min(heights) >= 3


@pytest.mark.parametrize('which', ['cuhk', 'prw'])
def test_jpegs(which, request):
    truth = request.getfixturevalue(which)
    sub = 'Image/SSM' if which == 'cuhk' else 'frames'
    files = sorted(os.listdir(osp.join(truth.root, sub)))
    assert files == sorted(truth.images)
    for name in files[:6]:
        img = cv2.imread(osp.join(truth.root, sub, name))
        assert img.shape == (240, 400, 3)
        assert img.std() > 10  # not blank


# --------------------------------------------------------------------------
# CUHK-SYSU through the independent reader
# --------------------------------------------------------------------------


def check_cuhk(truth, sizes):
    assert sorted(truth.galleries) == sorted(sizes)
    files = sorted(
        glob.glob(
            osp.join(truth.root, 'annotation', 'test', 'train_test',
                     'TestG*.mat')))
    assert [osp.basename(f) for f in files] == sorted(f'TestG{s}.mat'
                                                      for s in sizes)
    query_orders = []
    for S in sizes:
        r = read_cuhk(truth.root, S)
        assert r['order'] == [
            f's{k}.jpg' for k in range(1,
                                       len(r['order']) + 1)
        ]
        assert r['pool'] == truth.test_images
        assert [n for n in r['order'] if n not in set(r['pool'])] == \
            truth.train_images
        assert r['boxes'].keys() == truth.images.keys()
        for name, v in truth.images.items():
            np.testing.assert_array_equal(r['boxes'][name], v['boxes'])
            np.testing.assert_array_equal(r['pids'][name], v['pids'])
        assert len(r['queries']) == len(truth.queries)
        for q, t in zip(r['queries'], truth.queries):
            assert q['img'] == t['img'] and q['pid'] == t['pid']
            np.testing.assert_array_equal(q['box'], t['box'])
        assert r['galleries'] == truth.galleries[S]
        query_orders.append([(q['img'], q['pid']) for q in r['queries']])
        test = set(truth.test_images)
        for q, gallery in zip(truth.queries, truth.galleries[S]):
            assert q['img'] not in gallery
            assert len(set(gallery)) == len(gallery)
            assert set(gallery) <= test
            assert len(gallery) == min(S, len(test) - 1)
            contains = [q['pid'] in truth.images[n]['pids'] for n in gallery]
            n_t = sum(contains)
            assert n_t >= 1 and all(contains[:n_t])
            # every other test image with the target is in the gallery
            assert n_t == sum(q['pid'] in truth.images[n]['pids']
                              for n in test) - 1
    assert all(o == query_orders[0] for o in query_orders)


def test_cuhk_reader_small(cuhk):
    # 12 test images: no standard size fits, TestG50 holds every other image
    check_cuhk(cuhk, [50])
    assert all(len(g) == 11 for g in cuhk.galleries[50])


def test_cuhk_reader_standard_sizes(cuhk_mid):
    check_cuhk(cuhk_mid, [50, 100])
    assert len(cuhk_mid.queries) == 24


def test_cuhk_ishard_and_fields(cuhk):
    img = loadmat(osp.join(cuhk.root, 'annotation', 'Images.mat'))['Img']
    assert img.shape == (1, 30)
    assert img.dtype.names == ('imname', 'nAppear', 'box')
    first = img[0, 0]
    assert first['imname'].dtype.kind == 'U'
    assert first['nAppear'].shape == (1, 1)
    assert first['nAppear'].dtype == np.float64
    assert first['box'].dtype.names == ('idlocate', 'ishard')
    assert first['box'][0, 0]['idlocate'].shape == (1, 4)
    hard = [
        float(b['ishard'].squeeze()) for im in img[0] for b in im['box'][0]
    ]
    assert set(hard) <= {0.0, 1.0}
    pool = loadmat(osp.join(cuhk.root, 'annotation', 'pool.mat'))['pool']
    assert pool.shape == (12, 1) and pool.dtype == object
    train = loadmat(
        osp.join(cuhk.root, 'annotation', 'test', 'train_test',
                 'Train.mat'))['Train']
    assert train.shape == (7, 1) and train.dtype == object
    assert train[0, 0].dtype.names == ('idname', 'nAppear', 'scene')
    t = loadmat(
        osp.join(cuhk.root, 'annotation', 'test', 'train_test',
                 'TestG50.mat'))['TestG50']
    assert t.shape == (1, 5) and t.dtype.names == ('Query', 'Gallery')
    assert t[0, 0]['Query'].dtype.names == ('imname', 'idlocate', 'ishard',
                                            'idname')
    g = t[0, 0]['Gallery']
    assert g.dtype.names == ('imname', 'idlocate', 'ishard')
    assert g.shape == (1, 11)
    assert g[0, -1]['idlocate'].shape == (0, 0)


# --------------------------------------------------------------------------
# PRW through the independent reader
# --------------------------------------------------------------------------


def test_prw_reader(prw):
    r = read_prw(prw.root)
    assert r['train'] == prw.train_images and r['test'] == prw.test_images
    assert r['boxes'].keys() == prw.images.keys()
    for name, v in prw.images.items():
        np.testing.assert_array_equal(r['boxes'][name], v['boxes'])
        np.testing.assert_array_equal(r['pids'][name], v['pids'])
        assert cam_of(name) == v['cam']
    assert len(r['queries']) == len(prw.queries)
    for q, t in zip(r['queries'], prw.queries):
        assert q['img'] == t['img'] and q['pid'] == t['pid']
        np.testing.assert_array_equal(q['box'], t['box'])
        assert q['img'] in set(prw.test_images)
        # cross-camera search is possible
        others = [
            n for n in prw.test_images if q['pid'] in prw.images[n]['pids']
            and cam_of(n) != cam_of(q['img'])
        ]
        assert others
    names = sorted(prw.images)
    assert all(len(n) == len('c1s1_000000.jpg') for n in names)


def test_prw_query_info_crlf(prw):
    with open(osp.join(prw.root, 'query_info.txt'), 'rb') as f:
        raw = f.read()
    lines = raw.split(b'\r\n')
    assert lines[-1] == b'' and len(lines) - 1 == len(prw.queries)
    assert b'\n' not in raw.replace(b'\r\n', b'')
    for line in lines[:-1]:
        parts = line.split(b' ')
        assert len(parts) == 6 and all(
            p.lstrip(b'-').isdigit() for p in parts[:5])


def test_prw_annotation_keys(tmp_path):
    truth = make_synthetic_prw(str(tmp_path), seed=2, annotations_only=True)
    r = read_prw(truth.root)
    keys = list(r['keys'].values())
    assert 'anno_file' in keys and keys.count('box_new') > len(keys) / 2
    assert any((r['pids'][n] == -1).any() for n in r['pids'])


# --------------------------------------------------------------------------
# the MAT writer produces scipy.io.savemat's bytes
# --------------------------------------------------------------------------


def raw_elements(data):
    """Top-level elements of a MAT file, decompressed."""
    out, pos = [], 128
    while pos < len(data):
        mdtype, n = struct.unpack('<II', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        out.append(
            zlib.decompress(body) if mdtype == 15 else data[pos:pos + 8 + n])
        pos += 8 + n
    return b''.join(out)


def savemat_bytes(mdict, compress=False):
    buf = io.BytesIO()
    savemat(buf, mdict, do_compression=compress)
    return buf.getvalue()


def test_mat5_matches_savemat(tmp_path):
    sdt = [('idlocate', 'O'), ('ishard', 'O')]
    bx = np.empty((1, 3), dtype=sdt)
    for i in range(3):
        bx[0, i] = (np.array([[1., 2, 3, 4 + i]]), float(i % 2))
    img = np.empty((1, 2),
                   dtype=[('imname', 'O'), ('nAppear', 'O'), ('box', 'O')])
    img[0, 0] = ('s1.jpg', 3.0, bx)
    img[0, 1] = ('s12345.jpg', 1.0, bx[:, :1])
    cell = np.empty((3, 1), dtype=object)
    cell[:, 0] = ['s1.jpg', 'abc', 'p1234567']
    g = np.empty((1, 2), dtype=sdt)
    g[0, 0] = (np.zeros((0, 0)), 0.0)
    g[0, 1] = (np.array([[1., 2, 3, 4]]), 1.0)
    top = np.empty((1, 2), dtype=[('Query', 'O'), ('Gallery', 'O')])
    top[0, 0] = top[0, 1] = (bx[:, :1], g)
    mdict = {
        'Img': img,
        'pool': cell,
        'T': top,
        'box_new': np.arange(10.).reshape(2, 5)
    }
    for compress in (False, True):
        path = str(tmp_path / f'{compress}.mat')
        mat5.write_mat(path, mdict, compress=compress)
        with open(path, 'rb') as f:
            mine = f.read()
        ref = savemat_bytes(mdict, compress)
        assert mine[:116].startswith(b'MATLAB 5.0 MAT-file')
        assert mine[116:] == ref[116:]


@pytest.mark.parametrize('which', ['cuhk', 'prw'])
def test_generated_files_are_savemat_bytes(which, request):
    """Round trip: loadmat + savemat reproduces every file's content."""
    truth = request.getfixturevalue(which)
    files = [
        p
        for p in glob.glob(osp.join(truth.root, '**', '*.mat'), recursive=True)
    ]
    if which == 'prw':
        files = [p for p in files if 'annotations' not in p] + sorted(
            p for p in files if 'annotations' in p)[:5]
    assert files
    for path in files:
        d = {k: v for k, v in loadmat(path).items() if not k.startswith('__')}
        with open(path, 'rb') as f:
            mine = raw_elements(f.read())
        assert mine == savemat_bytes(d)[128:], path


# --------------------------------------------------------------------------
# real sizes (annotations only)
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_real_size_cuhk_sysu(tmp_path):
    spec = REAL_SIZES['cuhk-sysu']
    t = time.time()
    truth = make_synthetic_cuhk_sysu(str(tmp_path),
                                     annotations_only=True,
                                     **spec)
    seconds = time.time() - t
    print(f'real-size CUHK-SYSU annotations: {seconds:.1f} s')
    assert len(truth.images) == 18184
    assert len(truth.test_images) == 6978
    assert len(truth.train_images) == 18184 - 6978
    assert len(truth.pids()) == 8432 and len(truth.pids('test')) == 2900
    assert len(truth.queries) == 2900
    assert sorted(truth.galleries) == [50, 100, 500, 1000, 2000, 4000]
    assert all(len(g) == 4000 for g in truth.galleries[4000])
    n_boxes = truth.num_boxes
    n_train = sum(
        len(v['pids']) for v in truth.images.values() if v['split'] == 'train')
    assert 85000 < n_boxes < 105000 and 50000 < n_train < 60000
    protoc = loadmat(
        osp.join(tmp_path, 'annotation', 'test', 'train_test',
                 'TestG50.mat'))['TestG50']
    assert protoc.shape == (1, 2900)
    assert not glob.glob(osp.join(tmp_path, '**', '*.jpg'), recursive=True)


def test_real_size_prw(tmp_path):
    spec = REAL_SIZES['prw']
    t = time.time()
    truth = make_synthetic_prw(str(tmp_path), annotations_only=True, **spec)
    seconds = time.time() - t
    print(f'real-size PRW annotations: {seconds:.1f} s')
    assert len(truth.images) == 11816
    assert len(truth.test_images) == 6112
    assert len(truth.pids()) == 932 and len(truth.pids('test')) == 450
    assert len(truth.queries) == 2057
    with open(osp.join(tmp_path, 'query_info.txt'), 'rb') as f:
        assert f.read().count(b'\r\n') == 2057
    assert len(os.listdir(osp.join(tmp_path, 'annotations'))) == 11816
    frames = loadmat(osp.join(tmp_path, 'frame_test.mat'))['img_index_test']
    assert frames.shape == (6112, 1)
    assert 35000 < truth.num_boxes < 50000

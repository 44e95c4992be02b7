# Copyright (c) OpenMMLab. All rights reserved.
"""PRWDataset reads the native files exactly as the generator wrote them."""
import os
import os.path as osp

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from mmps.datasets import AnnotationError, PRWDataset, prw_camera_id
from .utils import copy_root, entry_boxes, entry_pids


def test_train_split_equals_truth(prw_truth):
    ds = PRWDataset(data_root=prw_truth.root, split='train')
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [d['img_name'] for d in infos] == prw_truth.train_images
    next_id = 0
    for d in infos:
        t = prw_truth.images[d['img_name']]
        np.testing.assert_array_equal(entry_boxes(d), t['boxes'])
        np.testing.assert_array_equal(entry_pids(d), t['pids'])
        assert d['cam_id'] == t['cam'] == prw_camera_id(d['img_name'])
        ids = [i['instance_id'] for i in d['instances']]
        assert ids == list(range(next_id, next_id + len(ids)))
        next_id += len(ids)
    assert ds.num_instances == next_id
    assert len({d['cam_id'] for d in infos}) > 1


@pytest.mark.parametrize('line_end', ['\r\n', '\n'])
def test_test_split_equals_truth(prw_truth, tmp_path, line_end):
    root = copy_root(prw_truth, tmp_path / 'r')
    path = osp.join(root, 'query_info.txt')
    with open(path, newline='') as f:
        text = f.read()
    assert '\r\n' in text  # the original release's line ends
    with open(path, 'w', newline='') as f:
        f.write(text.replace('\r\n', line_end))
    ds = PRWDataset(data_root=root, split='test')
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    gallery, queries = infos[:ds.num_gallery], infos[ds.num_gallery:]
    assert [d['img_name'] for d in gallery] == prw_truth.test_images
    for d in gallery:
        t = prw_truth.images[d['img_name']]
        np.testing.assert_array_equal(entry_boxes(d), t['boxes'])
        np.testing.assert_array_equal(entry_pids(d), t['pids'])
        assert d['cam_id'] == t['cam']
    assert len(queries) == len(prw_truth.queries) > 0
    for k, (d, t) in enumerate(zip(queries, prw_truth.queries)):
        assert d['query_id'] == k and d['is_query']
        assert d['img_name'] == t['img']
        assert d['gallery_img_ids'] is None
        assert gallery[d['query_img_index']]['img_name'] == t['img']
        assert d['cam_id'] == prw_truth.images[t['img']]['cam']
        np.testing.assert_array_equal(entry_boxes(d)[0], t['box'])
        assert entry_pids(d)[0] == t['pid']


def test_box_variable_fallback_and_clipping(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    name = prw_truth.train_images[0]
    path = osp.join(root, 'annotations', name + '.mat')
    mat = loadmat(path)
    key = 'box_new' if 'box_new' in mat else 'anno_file'
    boxes = mat[key].astype(np.float64)
    boxes[0, 1:3] = [-3, -2]  # x, y = -3, -2: starts outside the frame
    savemat(path, {'anno_previous': boxes})
    ds = PRWDataset(data_root=root, split='train')
    inst = ds.get_data_info(0)['instances'][0]
    w, h = boxes[0, 3:5]
    assert inst['bbox'] == [0.0, 0.0, -3 + w, -2 + h]


def test_bad_annotation_files(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    name = prw_truth.train_images[2]
    path = osp.join(root, 'annotations', name + '.mat')
    savemat(path, {'boxes': np.zeros((2, 5))})
    with pytest.raises(AnnotationError) as e:
        PRWDataset(data_root=root)
    assert path in str(e.value) and 'box_new' in str(e.value)
    savemat(path, {'box_new': np.zeros((2, 4))})
    with pytest.raises(AnnotationError, match=r'box_new must be an N x 5'):
        PRWDataset(data_root=root)
    os.remove(path)
    with pytest.raises(AnnotationError, match=f'{name}.mat: file not found'):
        PRWDataset(data_root=root)


def test_bad_frame_lists_and_queries(prw_truth, tmp_path):
    root = copy_root(prw_truth, tmp_path / 'r')
    savemat(osp.join(root, 'frame_test.mat'), {'img_index': np.zeros(3)})
    with pytest.raises(AnnotationError,
                       match=r"frame_test\.mat: missing variable 'img_index_test'"):
        PRWDataset(data_root=root, split='test')

    root = copy_root(prw_truth, tmp_path / 'r2')
    path = osp.join(root, 'query_info.txt')
    with open(path, 'a', newline='') as f:
        f.write('12 3 4 5\r\n')
    with pytest.raises(AnnotationError) as e:
        PRWDataset(data_root=root, split='test')
    n = len(prw_truth.queries) + 1
    assert f'query_info.txt:{n}: expected "pid x y w h frame"' in str(e.value)

    with pytest.raises(AnnotationError, match='does not follow'):
        prw_camera_id('frame_0001.jpg')


def test_missing_root_says_how_to_write_it(tmp_path):
    """A fresh checkout: `tools/train.py configs/dicl_synthetic_prw.py` stops
    with the command that writes the set, and that command works."""
    import shlex
    import subprocess
    import sys
    root = str(tmp_path / 'data' / 'synthetic' / 'prw')
    with pytest.raises(AnnotationError, match='make data') as e:
        PRWDataset(data_root=root, split='train')
    command = str(e.value).split('`')[-2]
    assert command == ('python tools/misc/make_synthetic_dataset.py prw '
                       f'--out {root}')
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    argv = shlex.split(command)
    out = subprocess.run([sys.executable] + argv[1:] + ['--num-images', '12'],
                         cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(PRWDataset(data_root=root, split='train')) > 0
    # a real-data root: where the files go, and the synthetic stand-in
    with pytest.raises(AnnotationError, match='README') as e:
        PRWDataset(data_root=str(tmp_path / 'PRW'), split='train')
    assert 'make_synthetic_dataset.py prw' in str(e.value)

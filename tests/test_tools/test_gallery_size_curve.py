# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/gallery_size_curve.py, and the offline evaluators
import neither torch nor mmengine, mmdet or mmcv."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from mmps.datasets import CUHKSYSUDataset
from mmps.datasets.synthetic import make_synthetic_cuhk_sysu
from mmps.evaluation.functional import (PersonSearchProtocol,
                                        align_search_results,
                                        evaluate_person_search,
                                        load_search_results,
                                        save_search_results)
from mmps.utils import register_all_modules
from .test_eval_search import fake_results

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')
HEAVY = ('torch', 'mmengine', 'mmdet', 'mmcv')
#: runs a tool as __main__ and prints the heavy modules it loaded
WRAPPER = ('import runpy, sys, json\n'
           'sys.argv = sys.argv[1:]\n'
           'try:\n'
           '    runpy.run_path(sys.argv[0], run_name="__main__")\n'
           'except SystemExit as e:\n'
           '    assert not e.code, e.code\n'
           'print("HEAVY", json.dumps(sorted(m for m in sys.modules\n'
           '      if m.split(".")[0] in %r)))\n' % (HEAVY, ))


@pytest.fixture(scope='module')
def cuhk(tmp_path_factory):
    """A root with TestG50 and TestG100, and a results file."""
    register_all_modules()
    root = str(tmp_path_factory.mktemp('cuhk-curve'))
    truth = make_synthetic_cuhk_sysu(root, seed=4, num_images=300,
                                     num_ids=60, annotations_only=True,
                                     gallery_sizes=(50, 100))
    assert sorted(truth.galleries) == [50, 100]
    ds = CUHKSYSUDataset(data_root=root, split='test', gallery_size=50,
                         check_images=False)
    protocol = PersonSearchProtocol.from_data_infos(
        [ds.get_data_info(i) for i in range(len(ds))])
    results = osp.join(root, 'results.npz')
    save_search_results(results, **fake_results(protocol, seed=1)[0])
    return root, results


def expected(root, results, size):
    """The functional evaluation on the dataset class's protocol."""
    ds = CUHKSYSUDataset(data_root=root, split='test', gallery_size=size,
                         check_images=False)
    protocol = PersonSearchProtocol.from_data_infos(
        [ds.get_data_info(i) for i in range(len(ds))])
    inputs = align_search_results(load_search_results(results), protocol)
    return evaluate_person_search(protocol, *inputs)


def run_light(argv):
    out = subprocess.run([sys.executable, '-c', WRAPPER] + argv,
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[-1].startswith('HEAVY ')
    assert json.loads(lines[-1][6:]) == [], 'heavy modules were imported'
    return lines[:-1]


def test_curve_values_and_no_heavy_import(cuhk, tmp_path):
    root, results = cuhk
    out_json = str(tmp_path / 'curve.json')
    lines = run_light([
        osp.join(TOOLS, 'gallery_size_curve.py'), '--data-root', root,
        '--results', results, results, '--labels', 'a', 'b', '--sizes', '50',
        '100', '-1', '--json', out_json
    ])
    with open(out_json) as f:
        figures = json.load(f)
    assert len(lines) == len(figures) == 2 * 3 * 2
    for size in (50, 100, -1):
        ref = expected(root, results, None if size == -1 else size)
        for label in 'ab':
            assert figures[f'{label}_g{size}_mAP'] == pytest.approx(
                ref['mAP'], abs=1e-12)
            assert figures[f'{label}_g{size}_top1'] == pytest.approx(
                ref['top-1'], abs=1e-12)
    assert f'a_g50_mAP: {figures["a_g50_mAP"]:.4g}' in lines


def test_curve_png(cuhk, tmp_path):
    pytest.importorskip('matplotlib')
    root, results = cuhk
    png = str(tmp_path / 'curve.png')
    subprocess.run([
        sys.executable, osp.join(TOOLS, 'gallery_size_curve.py'),
        '--data-root', root, '--results', results, '--sizes', '50', '100',
        '-1', '--out-png', png
    ], check=True, capture_output=True, cwd=ROOT)
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_eval_search_imports_no_heavy_module(cuhk):
    root, results = cuhk
    lines = run_light([
        osp.join(TOOLS, 'eval_search.py'), '--dataset', 'cuhk-sysu',
        '--data-root', root, '--results', results, '--gallery-size', '50'
    ])
    ref = expected(root, results, 50)
    assert json.loads(lines[-1])['mAP'] == pytest.approx(ref['mAP'],
                                                         abs=1e-12)

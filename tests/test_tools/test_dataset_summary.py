# Copyright (c) OpenMMLab. All rights reserved.
"""The demo's dataset step: synthetic dataset configs load through their
pipelines on freshly generated roots."""
import os.path as osp
import subprocess
import sys

import pytest

from mmps.datasets.synthetic import make_synthetic_cuhk_sysu, make_synthetic_prw

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('name,make', [('prw', make_synthetic_prw),
                                       ('cuhk-sysu', make_synthetic_cuhk_sysu)])
def test_dataset_summary_on_synthetic_config(tmp_path, name, make):
    truth = make(str(tmp_path / name), seed=2, num_images=30, num_ids=10,
                 image_size=(120, 200))
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/misc/dataset_summary.py'),
         osp.join(REPO, f'configs/_base_/datasets/synthetic_{name}.py'),
         '--data-root', truth.root],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith('[')]
    n_train = len(truth.train_images)
    n_boxes = sum(len(truth.images[n]['pids']) for n in truth.train_images)
    assert f'{n_train} images, {n_boxes} boxes' in lines[0]
    assert f'{len(truth.queries)} queries' in lines[2]
    assert lines[4].startswith('[test] query 0: ' + truth.queries[0]['img'])

# Copyright (c) OpenMMLab. All rights reserved.
"""tools/train.py -> tools/test.py --out -> eval_search.py on a tiny synthetic
root: the test loop prints the metrics, and the results file evaluates offline
to the same numbers."""
import json
import math
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.runner.checkpoint import _load_checkpoint

import mmps.engine  # noqa: F401  registers the checkpoint loader
from mmps.engine import trusted_local_checkpoints
from mmps.datasets import PRWDataset
from mmps.datasets.synthetic import make_synthetic_prw

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'dicl_synthetic_prw.py')
METRICS = ('mAP', 'top-1', 'top-5', 'top-10', 'det_recall', 'det_ap')
CBGM_METRICS = ('mAP_cbgm', 'top-1_cbgm', 'top-5_cbgm', 'top-10_cbgm')


def run(args, cwd):
    out = subprocess.run([sys.executable] + args, capture_output=True,
                         text=True, cwd=cwd, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_synthetic_prw(
        str(tmp_path_factory.mktemp('prw')), seed=4, num_images=24,
        num_ids=8, image_size=(120, 200)).root


def logged_metrics(log: str, names=METRICS) -> dict:
    line = [ln for ln in log.splitlines() if 'Epoch(test)' in ln][-1]
    return {k: float(re.search(rf'{k}: ([0-9.]+)', line).group(1))
            for k in names}


def check_offline(root, results, metrics, tmp_path, *options):
    out = run([
        osp.join(REPO, 'tools/analysis_tools/eval_search.py'), '--dataset',
        'prw', '--data-root', root, '--results', results, *options
    ], tmp_path)
    offline = json.loads(out[out.index('{'):out.rindex('}') + 1])
    for k in metrics:  # the log rounds to 4 digits
        assert offline[k] == pytest.approx(metrics[k], abs=1e-4), k


def test_test_py_on_initialised_model(root, tmp_path):
    results = str(tmp_path / 'results.npz')
    log = run([
        osp.join(REPO, 'tools/test.py'), CONFIG, '--out', results,
        '--work-dir', str(tmp_path / 'w'), '--cfg-options',
        f'test_dataloader.dataset.data_root={root}'
    ], REPO)
    assert 'Person search (' in log and '| mAP' in log
    check_offline(root, results, logged_metrics(log), tmp_path)


def test_test_py_cbgm(root, tmp_path):
    results = str(tmp_path / 'results.npz')
    log = run([
        osp.join(REPO, 'tools/test.py'), CONFIG, '--out', results, '--cbgm',
        '--work-dir', str(tmp_path / 'w'), '--cfg-options',
        f'test_dataloader.dataset.data_root={root}'
    ], REPO)
    assert 'CBGM as on prw: k1=30, k2=4' in log and '+ CBGM' in log
    check_offline(root, results, logged_metrics(log, METRICS + CBGM_METRICS),
                  tmp_path, '--cbgm')


def test_train_then_test_checkpoint(root, tmp_path):
    work = str(tmp_path / 'w')
    opts = [
        f'train_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1'
    ]
    log = run([osp.join(REPO, 'tools/train.py'), CONFIG, '--work-dir', work,
               '--cfg-options'] + opts, REPO)
    assert 'Epoch(val) [1]' in log
    # DICL's hooks: the memory filled before training, labels before the
    # epoch, and both saved with the frozen threshold
    assert re.search(r'InstanceMemoryInitHook: (\d+) / \1 memory slots', log)
    assert 'PseudoLabelHook (cluster, epoch 0): num_clusters' in log
    assert 'loss_id' in log and 'loss_sim' in log and 'loss_triplet' in log
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    with trusted_local_checkpoints():
        state = _load_checkpoint(ckpt, map_location='cpu')['state_dict']
    num_slots = PRWDataset(data_root=root, split='train').num_instances
    assert state['roi_head.memory.features'].shape == (num_slots, 256)
    assert bool(state['roi_head.memory.initialized'])
    assert not math.isnan(float(state['roi_head.memory.indep_threshold']))
    results = str(tmp_path / 'results.npz')
    log = run([osp.join(REPO, 'tools/test.py'), CONFIG, ckpt, '--out',
               results, '--work-dir', work, '--cfg-options'] + opts, REPO)
    # the checkpoint's weights are the ones evaluated
    assert 'Load checkpoint from' in log
    check_offline(root, results, logged_metrics(log), tmp_path)

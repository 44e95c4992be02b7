# Copyright (c) OpenMMLab. All rights reserved.
"""The launchers as a user runs them, with 2 CPU processes (gloo).

``tools/dist_train.sh`` / ``dist_test.sh`` (torchrun) and
``tools/slurm_train.sh`` / ``slurm_test.sh`` (srun; a stand-in ``srun`` that
starts the tasks on this machine with slurm's variables, and ``scontrol``)
train and test a tiny synthetic run; the 2-process test gives the same
metrics as one process.
"""
import os
import os.path as osp
import re
import socket
import stat
import subprocess
import sys

import pytest

from mmps.datasets.synthetic import make_synthetic_prw

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'dicl_synthetic_prw.py')
METRICS = ('mAP', 'top-1', 'det_ap')

pytestmark = pytest.mark.slow

FAKE_SRUN = r'''#!/usr/bin/env bash
# stand-in for slurm's srun: starts --ntasks copies of the command here
n=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ntasks=*) n="${1#--ntasks=}"; shift ;;
    -p|--partition) shift 2 ;;
    -*) echo "fake srun: $1" >&2; shift ;;
    *) break ;;
  esac
done
pids=()
for ((i = 0; i < n; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$n SLURM_NODELIST=node-[0] \
    "$@" > "$FAKE_SRUN_LOG.$i" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
cat "$FAKE_SRUN_LOG".*
exit $rc
'''

FAKE_SCONTROL = '''#!/usr/bin/env bash
# stand-in for "scontrol show hostname NODELIST"
echo 127.0.0.1
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(cmd, env=None, cwd=REPO) -> str:
    full_env = dict(os.environ, PYTHON=sys.executable, **(env or {}))
    full_env['PATH'] = osp.dirname(sys.executable) + os.pathsep + \
        full_env.get('PATH', '')
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                         env=full_env, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    return log


def logged_metrics(log: str) -> dict:
    line = [ln for ln in log.splitlines() if 'Epoch(test)' in ln][-1]
    return {k: float(re.search(rf'{k}: ([0-9.]+)', line).group(1))
            for k in METRICS}


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_synthetic_prw(
        str(tmp_path_factory.mktemp('prw')), seed=4, num_images=24,
        num_ids=8, image_size=(120, 200)).root


def options(root):
    return [
        '--cfg-options', f'train_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=100'
    ]


@pytest.fixture(scope='module')
def slurm_bin(tmp_path_factory):
    bin_dir = tmp_path_factory.mktemp('slurm_bin')
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def slurm_env(slurm_bin, tmp_path):
    return dict(
        PATH=f'{slurm_bin}{os.pathsep}{os.environ["PATH"]}',
        FAKE_SRUN_LOG=str(tmp_path / 'task'),
        GPUS='2',
        GPUS_PER_NODE='0',
        CPUS_PER_TASK='1',
        MASTER_PORT=str(free_port()))


@pytest.fixture(scope='module')
def dist_checkpoint(root, tmp_path_factory):
    """One epoch trained by ``dist_train.sh CONFIG 2`` (two CPU processes)."""
    work = str(tmp_path_factory.mktemp('dist_train'))
    log = run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work]
              + options(root), env=dict(PORT=str(free_port())))
    assert 'Distributed training: True' in log
    # DICL's hooks ran in both processes' run: memory and clustering
    assert re.search(r'InstanceMemoryInitHook: (\d+) / \1 memory slots', log)
    assert 'PseudoLabelHook (cluster, epoch 0)' in log
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    return ckpt


@pytest.fixture(scope='module')
def one_process_metrics(root, dist_checkpoint, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('test1'))
    log = run([sys.executable, 'tools/test.py', CONFIG, dist_checkpoint,
               '--work-dir', work] + options(root))
    return logged_metrics(log)


def test_dist_test_equals_one_process(root, dist_checkpoint,
                                      one_process_metrics, tmp_path):
    log = run(['bash', 'tools/dist_test.sh', CONFIG, dist_checkpoint, '2',
               '--work-dir', str(tmp_path)] + options(root),
              env=dict(PORT=str(free_port())))
    assert 'Distributed launcher: pytorch' in log
    assert logged_metrics(log) == one_process_metrics


def test_slurm_test_equals_one_process(root, dist_checkpoint,
                                       one_process_metrics, slurm_bin,
                                       tmp_path):
    log = run(['bash', 'tools/slurm_test.sh', 'cpu', 'mmps-test', CONFIG,
               dist_checkpoint, '--work-dir', str(tmp_path)] + options(root),
              env=slurm_env(slurm_bin, tmp_path))
    assert 'Distributed launcher: slurm' in log
    assert logged_metrics(log) == one_process_metrics


def test_slurm_train(root, slurm_bin, tmp_path):
    work = str(tmp_path / 'work')
    log = run(['bash', 'tools/slurm_train.sh', 'cpu', 'mmps-train', CONFIG,
               work] + options(root), env=slurm_env(slurm_bin, tmp_path))
    assert 'Distributed launcher: slurm' in log
    assert 'Distributed training: True' in log
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))


def test_slurm_launcher_without_slurm_variables(monkeypatch):
    from mmps.utils.dist import init_cpu_distributed
    for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'):
        monkeypatch.delenv(k, raising=False)
    if __import__('torch').cuda.is_available():
        pytest.skip('CPU path only')
    with pytest.raises(RuntimeError, match='SLURM_PROCID'):
        init_cpu_distributed('slurm')

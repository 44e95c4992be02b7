# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/gpu_check.sh: its CPU-runnable path, its figures.

On a CPU the script runs every step (the CUDA tests are collected and
skipped, AMP is not timed) on the narrow synthetic config; on a machine
without CUDA its default (the reference config on ``cuda``) stops at once.
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'gpu_check.sh')


def _run(*args, timeout=900):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(['bash', SCRIPT, *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=timeout)


def _figures(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    pairs = [re.fullmatch(r'([a-z0-9_]+): (.+)', ln) for ln in lines]
    assert all(pairs), f'not `name: value` lines: {lines}'
    return {m.group(1): m.group(2) for m in pairs}


@pytest.mark.slow
def test_gpu_check_runs_its_steps_on_a_cpu(tmp_path):
    out = tmp_path / 'gpu_check.json'
    proc = _run('--device', 'cpu', '--config', 'configs/dicl_synthetic_prw.py',
                '--frame-size', '200', '120', '--scale', '200', '120',
                '--train-iters', '1', '--infer-images', '2', '--json',
                str(out), '--work-dir', str(tmp_path / 'work'))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    figures = _figures(proc.stdout)
    saved = json.loads(out.read_text())
    assert set(saved) == set(figures)
    assert saved['device'] == 'cpu'
    assert saved['config'] == 'configs/dicl_synthetic_prw.py'
    # every CUDA test was collected; none ran or failed here
    assert saved['cuda_tests_failed'] == 0
    if not torch.cuda.is_available():
        assert saved['cuda_tests_passed'] == 0
        assert saved['cuda_tests_skipped'] >= 6
    assert saved['train_batch_size'] == 4
    assert saved['train_fp32_it_per_s'] > 0
    assert saved['train_fp32_step_s'] == pytest.approx(
        1 / saved['train_fp32_it_per_s'], rel=1e-3)
    assert 'train_amp_it_per_s' not in saved  # AMP needs CUDA
    for mode in ('plain', 'scene', 'fused', 'fused_all_proposals'):
        assert saved[f'infer_{mode}_img_per_s'] > 0
    # inputs at the requested scale (the config's pad to 32 aside)
    assert 200 * 120 <= saved['infer_input_pixels'] <= 224 * 128
    assert 'infer_peak_mem_gib' not in saved  # CUDA only
    assert 'AMP needs CUDA' in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available')
def test_gpu_check_without_cuda_stops_at_once_and_says_what_to_run():
    proc = _run(timeout=120)
    assert proc.returncode == 1
    assert 'CUDA is not available' in proc.stderr
    assert '--device cpu --config configs/dicl_synthetic_prw.py' in \
        proc.stderr
    assert proc.stdout == ''


def test_gpu_check_refuses_an_unknown_argument():
    proc = _run('--bogus', timeout=60)
    assert proc.returncode == 2
    assert 'unknown argument --bogus' in proc.stderr

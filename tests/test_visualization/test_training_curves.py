# Copyright (c) OpenMMLab. All rights reserved.
"""Training curves from MMEngine's scalars.json: the function, the CLI and
TrainingCurveHook (with a fake runner, and in a 1-epoch run)."""
import json
import os.path as osp
import subprocess
import sys
import types
from unittest import mock

import cv2
import pytest
from mmengine.logging import MMLogger

from mmps.engine.hooks import TrainingCurveHook
from mmps.registry import HOOKS
from mmps.visualization.training_curves import (find_scalars_file,
                                                load_scalars,
                                                plot_training_curves)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LOSSES = ('loss', 'loss_rpn_cls', 'loss_id')


def write_scalars(path, epochs=3, iters_per_epoch=4, with_eval=True):
    """A scalars.json as LoggerHook / PseudoLabelHook / val write it."""
    lines = []
    for epoch in range(epochs):
        lines.append({
            'pseudo_labels/num_clusters': 50 - 10 * epoch,
            'pseudo_labels/num_singletons': 40 - 10 * epoch,
            'pseudo_labels/num_multi_clusters': 10,
            'pseudo_labels/ari': 0.1 * (epoch + 1),
            'pseudo_labels/nmi': 0.5,
            'step': epoch
        })
        for i in range(iters_per_epoch):
            step = epoch * iters_per_epoch + i + 1
            lines.append({
                'lr': 0.01,
                'data_time': 0.01,
                'loss': 3. / step,
                'loss_rpn_cls': 1. / step,
                'acc': 90.,
                'loss_id': 2. / step,
                'time': 0.2,
                'epoch': epoch + 1,
                'iter': step,
                'step': step
            })
        if with_eval:
            lines.append({
                'mAP': 0.1 * (epoch + 1),
                'top-1': 0.2 * (epoch + 1),
                'det_ap': 0.5,
                'step': epoch + 1
            })
    with open(path, 'w') as f:
        for line in lines:
            f.write(json.dumps(line) + '\n')
        f.write('{"loss": 1.0, "st')  # a line being written: skipped
    return path


def test_load_scalars(tmp_path):
    path = write_scalars(str(tmp_path / 'scalars.json'))
    train, pseudo, evaluation = load_scalars(path)
    assert list(train) == [*LOSSES, 'lr']
    assert list(train['loss']) == list(range(1, 13))
    assert train['loss'][4] == pytest.approx(0.75)
    # labels made before 0-based epoch e are those of epoch e + 1
    assert dict(pseudo['num_clusters']) == {1: 50, 2: 40, 3: 30}
    assert pseudo['ari'][3] == pytest.approx(0.3)
    assert set(evaluation) == {'mAP', 'top-1'}
    assert evaluation['top-1'][2] == pytest.approx(0.4)


def test_plot_training_curves(tmp_path):
    run = tmp_path / 'work' / '20240101_000000'
    (run / 'vis_data').mkdir(parents=True)
    write_scalars(str(run / 'vis_data' / 'scalars.json'))
    out = str(tmp_path / 'out' / 'curves.png')
    # a work dir resolves to its run's scalars.json
    assert find_scalars_file(str(tmp_path / 'work')) == str(
        run / 'vis_data' / 'scalars.json')
    panels = plot_training_curves(str(tmp_path / 'work'), out, ncols=3)
    assert panels == [
        *LOSSES, 'lr', 'clusters', 'cluster quality', 'evaluation'
    ]
    img = cv2.imread(out)
    # 8 panels on 3 columns: 3 rows of 320 px, 3 columns of 420 px
    assert img.shape == (960, 1260, 3)
    assert not osp.exists(out + '.tmp')


def test_plot_training_curves_without_clusters_or_eval(tmp_path):
    path = str(tmp_path / 'scalars.json')
    with open(path, 'w') as f:
        f.write(json.dumps({'loss': 1., 'lr': 0.1, 'step': 1}) + '\n')
    assert plot_training_curves(path, str(tmp_path / 'a.png')) == [
        'loss', 'lr'
    ]
    with open(path, 'w') as f:
        f.write(json.dumps({'time': 1., 'step': 1}) + '\n')
    assert plot_training_curves(path, str(tmp_path / 'b.png')) == []
    assert not osp.exists(tmp_path / 'b.png')
    with pytest.raises(FileNotFoundError):
        plot_training_curves(str(tmp_path / 'missing'), 'c.png')


def test_plot_curves_cli(tmp_path):
    (tmp_path / 'run' / 'vis_data').mkdir(parents=True)
    src = write_scalars(str(tmp_path / 'run' / 'vis_data' / 'scalars.json'))
    out = subprocess.run(
        [sys.executable,
         osp.join(REPO, 'tools/analysis_tools/plot_curves.py'), src],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    # a JSON: next to its run's log by default
    assert osp.isfile(tmp_path / 'run' / 'training_curves.png')
    assert 'clusters' in out.stdout and 'evaluation' in out.stdout
    # a work dir: in it, where TrainingCurveHook draws
    out = subprocess.run(
        [sys.executable,
         osp.join(REPO, 'tools/analysis_tools/plot_curves.py'),
         str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert osp.isfile(tmp_path / 'training_curves.png')


def _fake_runner(work_dir, epoch=0):
    """What TrainingCurveHook reads of a runner."""
    return types.SimpleNamespace(
        work_dir=str(work_dir),
        log_dir=str(work_dir / '20240101_000000'),
        epoch=epoch,
        max_epochs=3,
        logger=MMLogger.get_instance('test_training_curves'))


def test_training_curve_hook_fake_runner(tmp_path):
    hook = HOOKS.build(dict(type='TrainingCurveHook'))
    assert isinstance(hook, TrainingCurveHook)
    runner = _fake_runner(tmp_path)
    png = tmp_path / 'training_curves.png'  # <work_dir>/training_curves.png
    # nothing logged yet: nothing drawn, no error
    hook.after_train_epoch(runner)
    assert not png.exists()
    vis_data = tmp_path / '20240101_000000' / 'vis_data'
    vis_data.mkdir(parents=True)
    write_scalars(str(vis_data / 'scalars.json'))
    for call in (hook.after_train_epoch, hook.after_train,
                 lambda r: hook.after_val_epoch(r, {'mAP': 0.1})):
        call(runner)
        assert png.is_file()
        png.unlink()

    # interval 2: drawn after epoch 2 (1-based) only
    hook = TrainingCurveHook(interval=2)
    with mock.patch.object(hook, 'draw') as draw:
        for epoch in range(3):
            runner.epoch = epoch
            hook.after_train_epoch(runner)
    assert draw.call_count == 1

    # rank > 0 draws nothing
    with mock.patch('mmengine.dist.utils.is_main_process',
                    return_value=False):
        TrainingCurveHook().after_val_epoch(runner)
    assert not png.exists()

    # an error is a warning, never an exception
    with mock.patch('mmps.visualization.training_curves.plot_training_curves',
                    side_effect=RuntimeError('boom')), \
            mock.patch.object(runner.logger, 'warning') as warning:
        TrainingCurveHook().after_val_epoch(runner)
    assert 'boom' in warning.call_args[0][0]
    assert not png.exists()


def test_default_runtime_has_the_hook():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dicl_synthetic_prw.py'))
    assert cfg.default_hooks.training_curves.type == 'TrainingCurveHook'


@pytest.mark.slow
def test_training_curve_hook_in_a_run(tmp_path):
    """A 1-epoch DICL run with validation writes the PNG in its work dir."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmps.datasets.synthetic import make_synthetic_prw
    from mmps.utils import register_all_modules
    register_all_modules()
    root = make_synthetic_prw(
        str(tmp_path / 'prw'), seed=4, num_images=12, num_ids=4,
        image_size=(120, 200)).root
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dicl_synthetic_prw.py'))
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = root
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = 'training_curves'
    # mmengine keeps visualizers by name for the whole process: a fresh one,
    # or the scalars go to the folder of an earlier test's runner
    cfg.visualizer.name = f'training_curves_{tmp_path.name}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert osp.isfile(osp.join(cfg.work_dir, 'training_curves.png'))
    train, pseudo, evaluation = load_scalars(
        osp.join(runner.log_dir, 'vis_data', 'scalars.json'))
    assert 'loss_id' in train and 'num_clusters' in pseudo
    assert 'mAP' in evaluation and 'top-1' in evaluation

# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
from typing import Optional

from mmengine.dist import master_only
from mmengine.hooks import Hook

from mmps.registry import HOOKS


@HOOKS.register_module()
class TrainingCurveHook(Hook):
    """Draw the training curves into ``<work_dir>/training_curves.png``.

    After every ``interval`` training epochs, after every validation and at
    the end of training, rank 0 redraws the curves of this run from its
    ``vis_data/scalars.json`` (MMEngine's ``LocalVisBackend``): the losses
    and the learning rate per iteration, the number of clusters and their
    ARI / NMI per epoch (``PseudoLabelHook``), mAP / top-1 per evaluation
    (:func:`mmps.visualization.training_curves.plot_training_curves`).
    A drawing error is logged as a warning and never stops the training.

    Args:
        interval (int): Redraw every ``interval`` training epochs.
            Defaults to 1.
        out_file (str): File name in the work dir. Defaults to
            ``'training_curves.png'``.
    """

    priority = 'VERY_LOW'  # after the LoggerHook has written the scalars

    def __init__(self,
                 interval: int = 1,
                 out_file: str = 'training_curves.png') -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = int(interval)
        self.out_file = out_file

    def _scalars_file(self, runner) -> Optional[str]:
        path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
        return path if osp.isfile(path) else None

    @master_only
    def draw(self, runner) -> None:
        """Redraw the PNG (rank 0; warnings instead of errors)."""
        path = self._scalars_file(runner)
        if path is None:
            return
        out = osp.join(runner.work_dir, self.out_file)
        try:
            from mmps.visualization.training_curves import \
                plot_training_curves
            plot_training_curves(path, out, title=osp.basename(
                osp.normpath(runner.work_dir)))
        except Exception as e:  # noqa: BLE001  never stop a training
            runner.logger.warning(
                f'TrainingCurveHook: could not draw {out}: '
                f'{type(e).__name__}: {e}')

    def after_train_epoch(self, runner) -> None:
        if self.every_n_epochs(runner, self.interval):
            self.draw(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.draw(runner)

    def after_train(self, runner) -> None:
        self.draw(runner)

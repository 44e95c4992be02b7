# Copyright (c) OpenMMLab. All rights reserved.
"""Training curves of a run from MMEngine's ``vis_data/scalars.json``.

``LocalVisBackend`` appends one JSON object per line to
``<work_dir>/<timestamp>/vis_data/scalars.json``:

- training lines (``LoggerHook``, every ``interval`` iterations): ``loss*``,
  ``lr``, ``epoch``, ``iter`` and ``step`` (the global iteration);
- pseudo label lines (:class:`~mmps.engine.hooks.PseudoLabelHook`, before
  every epoch): ``pseudo_labels/num_clusters``, ``.../ari``, ... with
  ``step`` = the 0-based epoch they are made for;
- validation lines (``LoggerHook.after_val_epoch``): the metrics (``mAP``,
  ``top-1``, ...; possibly with a ``prefix/``) with ``step`` = the number of
  finished epochs.

:func:`plot_training_curves` draws one subplot per loss and for the learning
rate against the iteration, the number of clusters and their ARI / NMI
against the epoch, and mAP / top-1 against the evaluated epoch. It uses
matplotlib's object API on an Agg canvas (no ``pyplot``, no global backend
change), so it runs inside a training process.
"""
import json
import math
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

#: Evaluation metrics drawn (a ``prefix/`` before them is accepted).
EVAL_KEYS = ('mAP', 'top-1')
#: Cluster counts drawn in the clusters subplot.
CLUSTER_KEYS = ('num_clusters', 'num_multi_clusters')
#: Cluster quality scores drawn in their own subplot.
QUALITY_KEYS = ('ari', 'nmi')
PSEUDO_PREFIX = 'pseudo_labels/'

Series = Dict[str, 'OrderedDict[float, float]']


def find_scalars_file(path: str) -> str:
    """The ``scalars.json`` of a file, a run folder or a work dir.

    Args:
        path (str): A JSON file (``scalars.json`` or any file of the same
            one-object-per-line format), a run folder ``<timestamp>/``
            holding ``vis_data/scalars.json``, or a work dir: its most
            recently written ``*/vis_data/scalars.json``.

    Returns:
        str: The path of the JSON lines file.
    """
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path}: no such file or folder')
    for candidate in (osp.join(path, 'vis_data', 'scalars.json'),
                      osp.join(path, 'scalars.json')):
        if osp.isfile(candidate):
            return candidate
    runs = [
        osp.join(path, name, 'vis_data', 'scalars.json')
        for name in os.listdir(path)
    ]
    runs = [f for f in runs if osp.isfile(f)]
    if not runs:
        raise FileNotFoundError(
            f'{path}: no vis_data/scalars.json in it or in its run folders '
            '(is LocalVisBackend among the visualizer\'s vis_backends?)')
    return max(runs, key=osp.getmtime)


def _metric_name(key: str) -> Optional[str]:
    """``'mAP'`` for ``'mAP'`` or ``'prefix/mAP'``; None for other keys."""
    name = key.rsplit('/', 1)[-1]
    if name in EVAL_KEYS and not key.startswith(PSEUDO_PREFIX):
        return name
    return None


def load_scalars(path: str) -> Tuple[Series, Series, Series]:
    """Read the curves of a ``scalars.json``.

    Lines that are not JSON objects (a line being written) are skipped. A
    step logged twice (a run resumed in the same file) keeps its last value.

    Args:
        path (str): See :func:`find_scalars_file`.

    Returns:
        tuple[dict, dict, dict]: ``(train, pseudo_labels, evaluation)``,
        each ``{name: OrderedDict(x -> value)}``: ``train`` holds the
        ``loss*`` keys and ``lr`` against the iteration, ``pseudo_labels``
        the :class:`PseudoLabelHook` statistics (prefix removed) against the
        1-based epoch they were used in, ``evaluation`` the
        :data:`EVAL_KEYS` against the step of the evaluation (the epoch for
        epoch-based validation, the line number when a line has no step).
    """
    train: Series = OrderedDict()
    pseudo: Series = OrderedDict()
    evaluation: Series = OrderedDict()

    def put(series: Series, name: str, x: float, value) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if not math.isfinite(float(value)):
            return
        series.setdefault(name, OrderedDict())[x] = float(value)

    with open(find_scalars_file(path)) as f:
        for line_no, line in enumerate(f):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            step = record.get('step', line_no)
            for key, value in record.items():
                if key.startswith(PSEUDO_PREFIX):
                    # made before 0-based epoch `step`: used in epoch step + 1
                    put(pseudo, key[len(PSEUDO_PREFIX):], step + 1, value)
                elif key.startswith('loss') or key == 'lr':
                    put(train, key, step, value)
                elif _metric_name(key) is not None:
                    put(evaluation, _metric_name(key), step, value)
    # 'loss' (the sum) first, then the components as logged, lr last
    order = sorted(train, key=lambda k: (k == 'lr', k != 'loss'))
    train = OrderedDict((k, train[k]) for k in order)
    return train, pseudo, evaluation


def plot_training_curves(scalars_json_or_work_dir: str,
                         out_png: str,
                         title: Optional[str] = None,
                         ncols: int = 4) -> List[str]:
    """Draw the training curves of a run into a PNG.

    Subplots, in this order, each when its data is present: every ``loss*``
    key and ``lr`` against the iteration; the number of clusters (and of
    clusters of at least two boxes) per epoch; the clusters' ARI / NMI
    against the dataset identities per epoch; mAP / top-1 per evaluation.

    Args:
        scalars_json_or_work_dir (str): See :func:`find_scalars_file`.
        out_png (str): Output image path (folders are created).
        title (str, optional): Figure title. Defaults to the JSON path.
        ncols (int): Subplots per row. Defaults to 4.

    Returns:
        list[str]: The subplot titles; empty (and no file written) when the
        file holds none of these scalars.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    path = find_scalars_file(scalars_json_or_work_dir)
    train, pseudo, evaluation = load_scalars(path)

    # (title, x label, {legend: series})
    panels = [(name, 'iteration', {name: series})
              for name, series in train.items()]
    clusters = {k: pseudo[k] for k in CLUSTER_KEYS if k in pseudo}
    if clusters:
        panels.append(('clusters', 'epoch', clusters))
    quality = {k.upper(): pseudo[k] for k in QUALITY_KEYS if k in pseudo}
    if quality:
        panels.append(('cluster quality', 'epoch', quality))
    metrics = {k: evaluation[k] for k in EVAL_KEYS if k in evaluation}
    if metrics:
        panels.append(('evaluation', 'epoch', metrics))
    if not panels:
        return []

    ncols = max(1, min(ncols, len(panels)))
    nrows = int(math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), dpi=100)
    FigureCanvasAgg(fig)
    for k, (name, xlabel, curves) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        for legend, series in curves.items():
            xs, ys = list(series), list(series.values())
            ax.plot(xs, ys, marker='o' if len(xs) < 30 else None,
                    markersize=3, linewidth=1.2, label=legend)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        xs = sorted({x for series in curves.values() for x in series})
        if len(xs) <= 3:  # a few evaluations: their own ticks
            ax.set_xticks(xs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        if len(curves) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(title if title is not None else path, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out_dir = osp.dirname(osp.abspath(out_png))
    os.makedirs(out_dir, exist_ok=True)
    # written whole, then renamed: a viewer never reads half a file
    tmp = f'{out_png}.tmp'
    fig.savefig(tmp, format=osp.splitext(out_png)[1][1:] or 'png')
    os.replace(tmp, out_png)
    return [name for name, _, _ in panels]

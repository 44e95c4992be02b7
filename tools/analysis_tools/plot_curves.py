# Copyright (c) OpenMMLab. All rights reserved.
"""Draw the training curves of a run (losses and lr per iteration, clusters
and their ARI / NMI per epoch, mAP / top-1 per evaluation) into a PNG.

Reads MMEngine's ``vis_data/scalars.json``; ``TrainingCurveHook`` (in every
config's ``default_hooks``) draws the same figure during training.

Example::

    python tools/analysis_tools/plot_curves.py work_dirs/dicl_synthetic_prw
    python tools/analysis_tools/plot_curves.py \\
        work_dirs/x/20240101_120000/vis_data/scalars.json --out curves.png
"""
import argparse
import os.path as osp
import sys

from mmps.visualization.training_curves import (find_scalars_file,
                                                plot_training_curves)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        'path',
        metavar='WORK_DIR_OR_JSON',
        help='a scalars.json, a run folder <timestamp>/, or a work dir (its '
        'latest run)')
    parser.add_argument(
        '--out',
        help='output PNG; defaults to WORK_DIR/training_curves.png (where '
        'TrainingCurveHook draws), or to training_curves.png in the run folder '
        'of a JSON / run folder')
    parser.add_argument('--title', help='figure title')
    parser.add_argument(
        '--ncols', type=int, default=4, help='subplots per row')
    return parser.parse_args()


def main():
    args = parse_args()
    src = find_scalars_file(args.path)
    run = osp.dirname(osp.abspath(src))  # the run folder of the JSON
    if osp.basename(run) == 'vis_data':
        run = osp.dirname(run)
    out = args.out
    if out is None:
        # a work dir: in it, where TrainingCurveHook draws; else the run's
        work_dir = osp.isdir(args.path) and osp.abspath(
            args.path) == osp.dirname(run)
        out = osp.join(args.path if work_dir else run, 'training_curves.png')
    panels = plot_training_curves(src, out, title=args.title,
                                  ncols=args.ncols)
    if not panels:
        print(f'{src}: no losses, pseudo label statistics or metrics found',
              file=sys.stderr)
        sys.exit(1)
    print(f'{src} -> {out}: {", ".join(panels)}')


if __name__ == '__main__':
    main()

# Copyright (c) OpenMMLab. All rights reserved.
"""Write a synthetic person search dataset in the native CUHK-SYSU or PRW
format (annotation files exactly as the real releases lay them out).

Examples::

    python tools/misc/make_synthetic_dataset.py prw --out data/synthetic_prw
    python tools/misc/make_synthetic_dataset.py cuhk-sysu \\
        --out data/cuhk_real --real-size --annotations-only
"""
import argparse
import time

from mmps.datasets.synthetic import (REAL_SIZES, make_synthetic_cuhk_sysu,
                                     make_synthetic_prw)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dataset', choices=['cuhk-sysu', 'prw'])
    parser.add_argument('--out', required=True, help='dataset root to write')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-images', type=int, help='images in all')
    parser.add_argument('--num-ids', type=int, help='identities in all')
    parser.add_argument('--annotations-only',
                        action='store_true',
                        help='write the annotation files only (no JPEGs)')
    parser.add_argument(
        '--real-size',
        action='store_true',
        help='the real dataset\'s image, identity and query counts '
        '(REAL_SIZES); other options override them (--num-images / --num-ids '
        'then keep the default 40 %% test split)')
    parser.add_argument('--image-size',
                        type=int,
                        nargs=2,
                        metavar=('H', 'W'),
                        help='image height and width')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    kwargs = dict(REAL_SIZES[args.dataset]) if args.real_size else {}
    if args.num_images is not None:
        kwargs['num_images'] = args.num_images
        if args.real_size:  # keep the split fractions, not the counts
            kwargs.pop('num_test_images', None)
    if args.num_ids is not None:
        kwargs['num_ids'] = args.num_ids
        if args.real_size:
            for key in ('num_test_ids', 'num_queries'):
                kwargs.pop(key, None)
    if args.image_size is not None:
        kwargs['image_size'] = tuple(args.image_size)
    make = (make_synthetic_cuhk_sysu
            if args.dataset == 'cuhk-sysu' else make_synthetic_prw)
    t = time.time()
    truth = make(args.out,
                 seed=args.seed,
                 annotations_only=args.annotations_only,
                 **kwargs)
    seconds = time.time() - t
    print(f'{args.dataset} -> {args.out}: {len(truth.images)} images '
          f'({len(truth.test_images)} test), {truth.num_boxes} boxes, '
          f'{len(truth.pids())} identities ({len(truth.pids("test"))} test), '
          f'{len(truth.queries)} queries, {seconds:.1f} s')


if __name__ == '__main__':
    main()

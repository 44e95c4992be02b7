# Copyright (c) OpenMMLab. All rights reserved.
"""Search a person in a gallery of one's own images and draw the result.

Example::

    python tools/demo/search_demo.py --config configs/dicl_synthetic_prw.py \\
        --checkpoint work_dirs/dicl_synthetic_prw/epoch_50.pth \\
        --query data/synthetic/prw/frames/c1s2_000431.jpg \\
        --query-box 381 88 400 135 \\
        --gallery 'data/synthetic/prw/frames/*.jpg' \\
        --index gallery_index.npz --out result.jpg

Prints the ranked hits (rank, similarity, detection score, box, image) and
writes one picture: the query, then its top-k hits. ``--index FILE`` saves the
gallery's detections and features on the first run and reuses them on the
next ones (the same model only). The query's own image is left out of the
gallery unless ``--keep-query-image`` is given.
"""
import argparse
import os.path as osp
import sys

from mmps.apis import PersonSearcher, list_gallery_images
from mmps.structures import GalleryIndexError
from mmps.visualization import draw_search_result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Person search demo: rank the people of a gallery of '
        'images by their similarity to a query person')
    parser.add_argument('--config', required=True, help='model config file')
    parser.add_argument(
        '--checkpoint', help='checkpoint file (omit: model as initialised)')
    parser.add_argument('--query', required=True, help='query image file')
    parser.add_argument(
        '--query-box',
        type=float,
        nargs=4,
        required=True,
        metavar=('X1', 'Y1', 'X2', 'Y2'),
        help='the query person in the query image, pixels')
    parser.add_argument(
        '--gallery',
        help='gallery images: a folder, a glob pattern (quote it) or a file; '
        'optional when --index names an existing index')
    parser.add_argument(
        '--index',
        help='gallery index .npz: built from --gallery and saved if the file '
        'does not exist, else loaded and reused')
    parser.add_argument('--topk', type=int, default=10, help='hits to show')
    parser.add_argument(
        '--det-thresh',
        type=float,
        default=0.5,
        help='minimum detection score of a hit (default 0.5)')
    parser.add_argument(
        '--keep-query-image',
        action='store_true',
        help='also search the query image when it is in the gallery')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='gallery images per forward pass')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1')
    parser.add_argument(
        '--height', type=int, default=240, help='image height in the picture')
    parser.add_argument(
        '--out', required=True, help='picture file to write (.jpg / .png)')
    return parser.parse_args(argv)


def load_or_build_index(searcher: PersonSearcher, args):
    """The gallery index: loaded from --index, or built (and saved)."""
    if args.index and osp.isfile(args.index):
        index = searcher.load_index(args.index)
        if args.gallery is not None:
            paths = [osp.abspath(p) for p in list_gallery_images(args.gallery)]
            if paths != index.img_paths:
                raise SystemExit(
                    f'error: the index {args.index} holds {index.num_images} '
                    f'images that are not the {len(paths)} of --gallery '
                    f'{args.gallery}: delete the index to rebuild it, or '
                    'leave out --gallery to reuse it')
        print(f'gallery index loaded from {args.index}: {index}')
        return index
    if args.gallery is None:
        raise SystemExit('error: give --gallery (or an existing --index)')
    index = searcher.build_index(args.gallery, batch_size=args.batch_size)
    if args.index:
        index.save(args.index)
        print(f'gallery index saved to {args.index}: {index}')
    return index


def main(argv=None):
    args = parse_args(argv)
    try:
        search(args)
    except (FileNotFoundError, GalleryIndexError, ValueError) as e:
        raise SystemExit(f'error: {e}')


def search(args) -> None:
    """Embed the query, index the gallery, rank, print and draw."""
    if args.topk < 1:
        raise SystemExit(f'error: --topk must be >= 1, got {args.topk}')
    searcher = PersonSearcher(
        args.config, args.checkpoint, device=args.device,
        det_thresh=args.det_thresh)
    query_feat = searcher.embed_query(args.query, args.query_box)
    index = load_or_build_index(searcher, args)
    hits = searcher.search(
        index,
        query_feat,
        topk=args.topk,
        exclude_imgs=None if args.keep_query_image else [args.query])

    print(f'top-{args.topk} of {args.query} box {args.query_box} '
          f'({len(hits)} hits, detection score >= {args.det_thresh}):')
    print(f'{"rank":>4}  {"similarity":>10}  {"score":>6}  '
          f'{"box (x1 y1 x2 y2)":<27}  image')
    for hit in hits:
        box = ' '.join(f'{v:6.1f}' for v in hit.box)
        print(f'{hit.rank:>4}  {hit.similarity:>10.4f}  {hit.score:>6.3f}  '
              f'{box:<27}  {hit.img_path}')
    picture = draw_search_result(
        args.query, args.query_box, hits, height=args.height,
        out_file=args.out)
    print(f'picture ({picture.shape[1]}x{picture.shape[0]}) written to '
          f'{args.out}')


if __name__ == '__main__':
    sys.exit(main())

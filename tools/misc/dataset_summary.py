# Copyright (c) OpenMMLab. All rights reserved.
"""Load a person search dataset config (train and test splits, through their
pipelines) and print what it holds: images, boxes, identities, queries, and one
packed sample of each split.

Example::

    python tools/misc/dataset_summary.py configs/_base_/datasets/synthetic_prw.py
"""
import argparse
import time

import numpy as np
from mmengine import Config

from mmps.registry import DATASETS
from mmps.utils import register_all_modules


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='a config with train/test dataloaders')
    parser.add_argument('--data-root', help='override the data root')
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    for split, loader in (('train', cfg.train_dataloader),
                          ('test', cfg.test_dataloader)):
        ds_cfg = loader.dataset
        if args.data_root:
            ds_cfg.data_root = args.data_root
        t = time.time()
        ds = DATASETS.build(ds_cfg)
        ds.full_init()
        seconds = time.time() - t
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        gallery = [d for d in infos if not d['is_query']]
        pids = np.array([inst['person_id'] for d in gallery
                         for inst in d['instances']], np.int64)
        cams = sorted({d['cam_id'] for d in gallery})
        print(f'[{split}] {type(ds).__name__} @ {ds.data_root}: '
              f'{len(gallery)} images, {len(pids)} boxes '
              f'({int((pids >= 0).sum())} labeled, '
              f'{len(np.unique(pids[pids >= 0]))} identities), '
              f'{len(infos) - len(gallery)} queries, cameras {cams}, '
              f'loaded in {seconds:.2f} s')
        sample = ds[0]
        gt = sample['data_samples'].gt_instances
        print(f'[{split}] sample 0: image {tuple(sample["inputs"].shape)}, '
              f'{len(gt)} boxes, instances_ids '
              f'{gt.instances_ids.tolist()}, person_ids '
              f'{gt.person_ids.tolist()}')
        if len(infos) > len(gallery):
            q = ds[len(gallery)]
            meta = q['data_samples'].metainfo
            print(f'[{split}] query 0: {meta["img_name"]} box '
                  f'{q["data_samples"].gt_instances.bboxes.tensor.tolist()} '
                  f'person {q["data_samples"].gt_instances.person_ids.item()}'
                  f', gallery of '
                  f'{"all images but its own" if meta["gallery_img_ids"] is None else len(meta["gallery_img_ids"])}')


if __name__ == '__main__':
    main()

# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
import re
from typing import List, Optional

import numpy as np

from mmps.registry import DATASETS
from .base_ps_dataset import BasePersonSearchDataset
from .native_io import (AnnotationError, check_fields, load_mat, mat_box,
                        mat_cell_strings, mat_str)

#: Gallery sizes of the official protocol files ``TestG<S>.mat``.
CUHK_SYSU_GALLERY_SIZES = (50, 100, 500, 1000, 2000, 4000)


@DATASETS.register_module()
class CUHKSYSUDataset(BasePersonSearchDataset):
    """CUHK-SYSU read from its native files (no conversion step).

    Layout under ``data_root``::

        Image/SSM/s*.jpg
        annotation/Images.mat              Img: imname, nAppear, box(idlocate, ishard)
        annotation/pool.mat                pool: test image names
        annotation/test/train_test/Train.mat      Train: idname, nAppear, scene
        annotation/test/train_test/TestG<S>.mat   TestG<S>: Query, Gallery

    Train images are all images minus the pool; training boxes get their
    identity from ``Train.mat`` (-1 for the unlabeled ones). The test split
    lists the pool images as gallery entries (identities from the protocol
    file) and the queries of ``TestG<gallery_size>.mat`` with their galleries.

    Args:
        data_root (str): Dataset root.
        split (str): ``'train'`` or ``'test'``.
        gallery_size (int, optional): 50, 100, 500, 1000, 2000 or 4000 for the
            ``TestG<S>`` protocol; ``None`` or -1 for the full set (every test
            image but the query's own). Defaults to 100.
        **kwargs: See :class:`BasePersonSearchDataset`.
    """

    img_subdir = osp.join('Image', 'SSM')
    synthetic_format = 'cuhk-sysu'

    def __init__(self, data_root: str, split: str = 'train',
                 gallery_size: Optional[int] = 100, **kwargs) -> None:
        if gallery_size is not None and gallery_size != -1 and \
                gallery_size not in CUHK_SYSU_GALLERY_SIZES:
            raise ValueError(f'gallery_size must be one of '
                             f'{CUHK_SYSU_GALLERY_SIZES}, -1 or None, got '
                             f'{gallery_size!r}')
        self.gallery_size = None if gallery_size == -1 else gallery_size
        super().__init__(data_root=data_root, split=split, **kwargs)

    def _ann(self, *parts: str) -> str:
        return osp.join(self.data_root, 'annotation', *parts)

    def _load_images(self) -> dict:
        """``Images.mat``: image name -> (boxes x, y, w, h, cam_id 0)."""
        path = self._ann('Images.mat')
        imgs = check_fields(
            load_mat(path, ['Img'])['Img'], ('imname', 'box'), f'{path}: Img')
        if imgs.size == 0:
            raise AnnotationError(f'{path}: Img lists no image')
        out = {}
        for i, img in enumerate(imgs):
            name = mat_str(img['imname'], f'{path}: Img({i + 1}).imname')
            where = f'{path}: Img({i + 1}).box'
            boxes = img['box']
            if boxes.size:
                boxes = check_fields(boxes, ('idlocate', ), where)
                boxes = np.stack([
                    mat_box(b['idlocate'], f'{where}({j + 1}).idlocate')
                    for j, b in enumerate(boxes)
                ])
            else:
                boxes = np.zeros((0, 4))
            out[name] = boxes
        return out

    def _load_pool(self) -> List[str]:
        path = self._ann('pool.mat')
        return mat_cell_strings(load_mat(path, ['pool'])['pool'],
                                f'{path}: pool')

    def _records(self, names: List[str], boxes: dict, ids: dict) -> list:
        records = []
        for name in names:
            b = boxes[name]
            pids = np.full(len(b), -1, np.int64)
            for j, box in enumerate(b):
                pids[j] = ids.get((name, tuple(box)), -1)
            records.append(dict(name=name, boxes=b, person_ids=pids, cam_id=0))
        return records

    def _assign(self, ids: dict, boxes: dict, name: str, box: np.ndarray,
                pid: int, where: str) -> None:
        if name not in boxes:
            raise AnnotationError(f'{where}: image {name!r} is not in '
                                  f"{self._ann('Images.mat')}")
        ids[(name, tuple(box))] = pid
        self._unmatched += not any(
            np.array_equal(box, b) for b in boxes[name])

    def load_train_records(self) -> List[dict]:
        boxes = self._load_images()
        pool = set(self._load_pool())
        path = self._ann('test', 'train_test', 'Train.mat')
        train = load_mat(path, ['Train'])['Train'].reshape(-1)
        ids, self._unmatched = {}, 0
        for i, cell in enumerate(train):
            where = f'{path}: Train{{{i + 1}}}'
            item = check_fields(cell, ('idname', 'scene'), where)[0]
            pid = _pid(mat_str(item['idname'], f'{where}.idname'), i + 1)
            scenes = check_fields(item['scene'], ('imname', 'idlocate'),
                                  f'{where}.scene')
            for j, s in enumerate(scenes):
                w = f'{where}.scene({j + 1})'
                self._assign(ids, boxes, mat_str(s['imname'], f'{w}.imname'),
                             mat_box(s['idlocate'], f'{w}.idlocate'), pid, w)
        self._warn_unmatched(path)
        names = [n for n in boxes if n not in pool]
        return self._records(names, boxes, ids)

    def protocol_file(self) -> tuple:
        """(path, variable) of the protocol file this dataset reads."""
        size = self.gallery_size
        if size is None:  # full set: any protocol file gives the queries
            for s in CUHK_SYSU_GALLERY_SIZES:
                if osp.isfile(self._ann('test', 'train_test',
                                        f'TestG{s}.mat')):
                    size = s
                    break
            else:
                size = CUHK_SYSU_GALLERY_SIZES[0]
        return self._ann('test', 'train_test', f'TestG{size}.mat'), \
            f'TestG{size}'

    def load_test_records(self):
        boxes = self._load_images()
        pool = self._load_pool()
        if not pool:
            raise AnnotationError(f"{self._ann('pool.mat')}: pool lists no "
                                  'test image')
        missing = [n for n in pool if n not in boxes]
        if missing:
            raise AnnotationError(
                f"{self._ann('pool.mat')}: pool lists images that are not in "
                f"{self._ann('Images.mat')}: {missing[:5]}")
        path, var = self.protocol_file()
        protoc = check_fields(
            load_mat(path, [var])[var], ('Query', 'Gallery'), f'{path}: {var}')
        if protoc.size == 0:
            raise AnnotationError(f'{path}: {var} lists no query')
        ids, queries, self._unmatched = {}, [], 0
        for i, item in enumerate(protoc):
            where = f'{path}: {var}({i + 1})'
            q = check_fields(item['Query'], ('imname', 'idlocate', 'idname'),
                             f'{where}.Query')[0]
            q_name = mat_str(q['imname'], f'{where}.Query.imname')
            q_box = mat_box(q['idlocate'], f'{where}.Query.idlocate')
            pid = _pid(mat_str(q['idname'], f'{where}.Query.idname'), i + 1)
            self._assign(ids, boxes, q_name, q_box, pid, f'{where}.Query')
            gallery = check_fields(item['Gallery'], ('imname', 'idlocate'),
                                   f'{where}.Gallery')
            names = _strings(gallery['imname'], f'{where}.Gallery', 'imname')
            # only the images holding the target have a box (others: empty)
            for j in np.flatnonzero([b.size > 0 for b in gallery['idlocate']]):
                w = f'{where}.Gallery({j + 1})'
                box = mat_box(gallery[j]['idlocate'], f'{w}.idlocate')
                self._assign(ids, boxes, names[j], box, pid, w)
            queries.append(
                dict(name=q_name, box=q_box, person_id=pid, cam_id=0,
                     gallery=names if self.gallery_size else None,
                     where=f'{where}.Query'))
        self._warn_unmatched(path)
        return self._records(pool, boxes, ids), queries

    def _warn_unmatched(self, path: str) -> None:
        if self._unmatched:
            from mmengine.logging import print_log
            print_log(
                f'{path}: {self._unmatched} identity box(es) match no box of '
                'Images.mat exactly; they are ignored',
                logger='current', level=30)


def _strings(values: np.ndarray, where: str, field: str) -> list:
    """The ``field`` strings of a struct array (fast path, checked)."""
    try:
        out = [v[0] for v in values]
        if all(type(v) is np.str_ for v in out) and \
                all(v.shape == (1, ) for v in values):
            return [str(v) for v in out]
    except (IndexError, TypeError):
        pass
    return [
        mat_str(v, f'{where}({j + 1}).{field}') for j, v in enumerate(values)
    ]


def _pid(idname: str, fallback: int) -> int:
    """``'p1234'`` -> 1234 (the dataset's own numbering)."""
    m = re.fullmatch(r'p?(\d+)', idname.strip())
    return int(m.group(1)) if m else fallback

# Copyright (c) OpenMMLab. All rights reserved.
"""CUHK-SYSU's native files as plain records (numpy and scipy only).

:class:`mmps.datasets.CUHKSYSUDataset` (training and the test loop) and
``tools/analysis_tools/eval_search.py`` both read the dataset here.
"""
import os.path as osp
import re
from typing import List, Optional, Tuple

import numpy as np

from ..native_io import (AnnotationError, check_fields, load_mat, mat_box,
                         mat_cell_strings, mat_str)
from .cache import (cached_arrays, pack_images, pack_queries, unpack_images,
                    unpack_queries)
from .matfile import LeafColumns, MatUnsupported, iter_struct_array

__all__ = ['CUHK_SYSU_GALLERY_SIZES', 'CUHKSYSUReader', 'check_gallery_size']

#: Gallery sizes of the official protocol files ``TestG<S>.mat``.
CUHK_SYSU_GALLERY_SIZES = (50, 100, 500, 1000, 2000, 4000)


def check_gallery_size(gallery_size: Optional[int]) -> Optional[int]:
    """A CUHK-SYSU gallery size, checked: 50 ... 4000, or None for the full
    set (-1 reads as None)."""
    if gallery_size is not None and gallery_size != -1 and \
            gallery_size not in CUHK_SYSU_GALLERY_SIZES:
        raise ValueError(f'gallery_size must be one of '
                         f'{CUHK_SYSU_GALLERY_SIZES}, -1 or None, got '
                         f'{gallery_size!r}')
    return None if gallery_size == -1 else gallery_size


class CUHKSYSUReader:
    """Reads the CUHK-SYSU annotation files of a root into records.

    Layout under ``data_root``::

        annotation/Images.mat              Img: imname, nAppear, box(idlocate, ishard)
        annotation/pool.mat                pool: test image names
        annotation/test/train_test/Train.mat      Train: idname, nAppear, scene
        annotation/test/train_test/TestG<S>.mat   TestG<S>: Query, Gallery

    Train images are all images minus the pool; training boxes get their
    identity from ``Train.mat`` (-1 for the unlabeled ones). The test split
    lists the pool images as gallery images (identities from the protocol
    file) and the queries of ``TestG<gallery_size>.mat`` with their galleries.
    Records are cached (see :mod:`.cache`).

    Args:
        data_root (str): Dataset root.
        gallery_size (int, optional): 50 ... 4000 for ``TestG<S>``; None for
            the full set (every test image but the query's own).

    Attributes:
        warnings (list[str]): What the last read had to ignore (identity
            boxes matching no box of ``Images.mat``), for the caller's log.
    """

    def __init__(self, data_root: str,
                 gallery_size: Optional[int] = 100) -> None:
        self.data_root = data_root
        self.gallery_size = gallery_size
        self.warnings: List[str] = []

    def ann(self, *parts: str) -> str:
        """A path under ``annotation/``."""
        return osp.join(self.data_root, 'annotation', *parts)

    def protocol_file(self) -> Tuple[str, str]:
        """(path, variable) of the protocol file of the test split."""
        size = self.gallery_size
        if size is None:  # full set: any protocol file gives the queries
            for s in CUHK_SYSU_GALLERY_SIZES:
                if osp.isfile(self.ann('test', 'train_test',
                                       f'TestG{s}.mat')):
                    size = s
                    break
            else:
                size = CUHK_SYSU_GALLERY_SIZES[0]
        return self.ann('test', 'train_test', f'TestG{size}.mat'), \
            f'TestG{size}'

    # -- records --------------------------------------------------------------
    def load_train_records(self) -> List[dict]:
        """Training image records (see
        :meth:`mmps.datasets.BasePersonSearchDataset.load_train_records`)."""
        files = [self.ann('Images.mat'), self.ann('pool.mat'),
                 self.ann('test', 'train_test', 'Train.mat')]
        arrays = cached_arrays(
            dict(dataset='cuhk-sysu', split='train'), self.data_root, files,
            lambda: self._packed(self._read_train()))
        self._replay(arrays)
        return unpack_images(arrays, 'img_')

    def load_test_records(self) -> Tuple[List[dict], List[dict]]:
        """Gallery and query records; a query's ``gallery_idx`` indexes the
        gallery records (None for the full set)."""
        path, var = self.protocol_file()
        files = [self.ann('Images.mat'), self.ann('pool.mat'), path]
        arrays = cached_arrays(
            dict(dataset='cuhk-sysu', split='test', protocol=var,
                 full_set=self.gallery_size is None), self.data_root, files,
            lambda: self._packed(*self._read_test()))
        self._replay(arrays)
        return unpack_images(arrays, 'img_'), unpack_queries(arrays)

    def _packed(self, images: List[dict],
                queries: Optional[List[dict]] = None) -> dict:
        out = pack_images(images, 'img_')
        if queries is not None:
            out.update(pack_queries(queries))
        out['warnings'] = np.array(self.warnings, str)
        return out

    def _replay(self, arrays: dict) -> None:
        self.warnings = arrays['warnings'].tolist()

    # -- the files --------------------------------------------------------------
    def load_images(self) -> dict:
        """``Images.mat``: image name -> boxes (x, y, w, h)."""
        path = self.ann('Images.mat')
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

    def load_pool(self) -> List[str]:
        """``pool.mat``: the test image names."""
        path = self.ann('pool.mat')
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
                                  f"{self.ann('Images.mat')}")
        ids[(name, tuple(box))] = pid
        self._unmatched += not any(
            np.array_equal(box, b) for b in boxes[name])

    def _read_train(self) -> List[dict]:
        self.warnings = []
        boxes = self.load_images()
        pool = set(self.load_pool())
        path = self.ann('test', 'train_test', 'Train.mat')
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

    def _read_test(self) -> Tuple[List[dict], List[dict]]:
        self.warnings = []
        boxes = self.load_images()
        pool = self.load_pool()
        if not pool:
            raise AnnotationError(f"{self.ann('pool.mat')}: pool lists no "
                                  'test image')
        missing = [n for n in pool if n not in boxes]
        if missing:
            raise AnnotationError(
                f"{self.ann('pool.mat')}: pool lists images that are not in "
                f"{self.ann('Images.mat')}: {missing[:5]}")
        path, var = self.protocol_file()
        try:
            queries, ids = self._read_protocol(
                path, var, boxes, _fast_items(path, var))
        except MatUnsupported:  # outside the fast reader's subset: scipy
            queries, ids = self._read_protocol(
                path, var, boxes, _scipy_items(path, var))
        self._warn_unmatched(path)
        index = {n: i for i, n in enumerate(pool)}
        for q, rec in enumerate(queries):
            names = rec.pop('gallery_names')
            if self.gallery_size is None:
                rec['gallery_idx'] = None
                continue
            idx = [index.get(n, -1) for n in names]
            if min(idx, default=0) < 0:
                bad = [n for n, i in zip(names, idx) if i < 0]
                raise AnnotationError(
                    f'{self.data_root}: gallery of query {q} lists images '
                    f'that are not test images: {bad[:5]}')
            rec['gallery_idx'] = np.array(idx, np.int64)
        return self._records(pool, boxes, ids), queries

    def _read_protocol(self, path: str, var: str, boxes: dict, items) -> tuple:
        ids, queries, self._unmatched = {}, [], 0
        for i, item in enumerate(items):
            where = f'{path}: {var}({i + 1})'
            if isinstance(item, dict) and not {'Query', 'Gallery'} <= set(item):
                raise MatUnsupported(f'{where}: missing fields')
            q = check_fields(item['Query'], ('imname', 'idlocate', 'idname'),
                             f'{where}.Query')[0]
            q_name = mat_str(q['imname'], f'{where}.Query.imname')
            q_box = mat_box(q['idlocate'], f'{where}.Query.idlocate')
            pid = _pid(mat_str(q['idname'], f'{where}.Query.idname'), i + 1)
            self._assign(ids, boxes, q_name, q_box, pid, f'{where}.Query')
            names, targets = _gallery(item['Gallery'], f'{where}.Gallery')
            # only the images holding the target have a box (others: empty)
            for j, box in targets:
                self._assign(ids, boxes, names[j], box, pid,
                             f'{where}.Gallery({j + 1})')
            queries.append(
                dict(name=q_name, box=q_box, person_id=pid, cam_id=0,
                     gallery_names=names, where=f'{where}.Query'))
        if not queries:
            raise AnnotationError(f'{path}: {var} lists no query')
        return queries, ids

    def _warn_unmatched(self, path: str) -> None:
        if self._unmatched:
            self.warnings.append(
                f'{path}: {self._unmatched} identity box(es) match no box of '
                'Images.mat exactly; they are ignored')


def _fast_items(path: str, var: str):
    if not osp.isfile(path):
        raise AnnotationError(f'{path}: file not found')
    return iter_struct_array(path, var, columns=('Gallery', ))


def _scipy_items(path: str, var: str):
    protoc = check_fields(
        load_mat(path, [var])[var], ('Query', 'Gallery'), f'{path}: {var}')
    return iter(protoc)


def _gallery(gallery, where: str) -> tuple:
    """(image names, [(entry, target box)]) of a query's gallery."""
    if isinstance(gallery, LeafColumns):
        if gallery.kinds.get('imname') != 'char' or \
                gallery.kinds.get('idlocate') != 'numeric':
            raise MatUnsupported(f'{where}: unexpected fields')  # scipy names it
        names = gallery.strings['imname'].tolist()
        sizes = np.diff(gallery.offsets['idlocate'])
        targets = [(j, mat_box(gallery.numbers('idlocate', j),
                               f'{where}({j + 1}).idlocate'))
                   for j in np.flatnonzero(sizes > 0).tolist()]
        return names, targets
    gallery = check_fields(gallery, ('imname', 'idlocate'), where)
    names = _strings(gallery['imname'], where, 'imname')
    targets = [(j, mat_box(gallery[j]['idlocate'], f'{where}({j + 1}).idlocate'))
               for j in np.flatnonzero([b.size > 0
                                        for b in gallery['idlocate']])]
    return names, targets


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

# Copyright (c) OpenMMLab. All rights reserved.
"""PRW's native files as plain records (numpy and scipy only).

:class:`mmps.datasets.PRWDataset` (training and the test loop) and
``tools/analysis_tools/eval_search.py`` both read the dataset here.
"""
import os.path as osp
import re
from typing import List, Tuple

import numpy as np

from ..native_io import AnnotationError, load_mat, mat_cell_strings
from .cache import (cached_arrays, pack_images, pack_queries, unpack_images,
                    unpack_queries)

__all__ = ['PRW_BOX_KEYS', 'PRWReader', 'prw_camera_id']

#: Variable names of the boxes in ``annotations/<frame>.jpg.mat``, by priority.
PRW_BOX_KEYS = ('box_new', 'anno_file', 'anno_previous')


class PRWReader:
    """Reads the PRW annotation files of a root into records.

    Layout under ``data_root``::

        annotations/<frame>.jpg.mat   box_new (or anno_file / anno_previous):
                                      N x 5 [pid, x, y, w, h], pid -2 unlabeled
        frame_train.mat               img_index_train: frame names without .jpg
        frame_test.mat                img_index_test
        query_info.txt                'pid x y w h frame' per line (CRLF or LF)

    The test split lists the test frames as gallery images and the queries of
    ``query_info.txt`` in line order. Camera ids come from frame names.
    Records are cached (see :mod:`.cache`).

    Args:
        data_root (str): Dataset root.
    """

    def __init__(self, data_root: str) -> None:
        self.data_root = data_root
        self.warnings: List[str] = []

    def frames(self, split: str) -> List[str]:
        """Frame names (with ``.jpg``) of a split."""
        path = osp.join(self.data_root, f'frame_{split}.mat')
        var = f'img_index_{split}'
        names = mat_cell_strings(load_mat(path, [var])[var], f'{path}: {var}')
        if not names:
            raise AnnotationError(f'{path}: {var} lists no frame')
        return [n if n.endswith('.jpg') else n + '.jpg' for n in names]

    def _ann(self, name: str) -> str:
        return osp.join(self.data_root, 'annotations', name + '.mat')

    def record(self, name: str) -> dict:
        """The record of one frame (``annotations/<name>.mat``)."""
        path = self._ann(name)
        mat = load_mat(path, [])
        key = next((k for k in PRW_BOX_KEYS if k in mat), None)
        if key is None:
            raise AnnotationError(f'{path}: none of the box variables '
                                  f'{list(PRW_BOX_KEYS)} is present')
        ann = np.asarray(mat[key])
        if ann.size == 0:
            ann = np.zeros((0, 5))
        if ann.dtype.kind not in 'iuf' or ann.ndim != 2 or ann.shape[1] != 5:
            raise AnnotationError(f'{path}: {key} must be an N x 5 numeric '
                                  f'array [pid, x, y, w, h], got shape '
                                  f'{ann.shape} ({ann.dtype})')
        bad = ~np.isfinite(ann).all(1)
        if bad.any():
            raise AnnotationError(
                f'{path}: {key} row(s) {np.flatnonzero(bad)[:5].tolist()} '
                f'hold non-finite values: {ann[bad][0].tolist()}')
        pids = ann[:, 0].astype(np.int64)
        pids[pids < 0] = -1  # -2 marks unlabeled people
        return dict(name=name, boxes=ann[:, 1:].astype(np.float64),
                    person_ids=pids, cam_id=prw_camera_id(name, path))

    def _cached(self, split: str, build) -> dict:
        names = self.frames(split)
        files = [osp.join(self.data_root, f'frame_{split}.mat')]
        files += [self._ann(n) for n in names]
        if split == 'test':
            files.append(osp.join(self.data_root, 'query_info.txt'))
        return cached_arrays(dict(dataset='prw', split=split),
                             self.data_root, files, lambda: build(names))

    def load_train_records(self) -> List[dict]:
        """Training frame records."""
        arrays = self._cached(
            'train', lambda names: pack_images(
                [self.record(n) for n in names], 'img_'))
        return unpack_images(arrays, 'img_')

    def load_test_records(self) -> Tuple[List[dict], List[dict]]:
        """Gallery frame records and query records (no ``gallery_idx``: the
        gallery of a query is every frame but its own)."""

        def build(names):
            out = pack_images([self.record(n) for n in names], 'img_')
            out.update(pack_queries(self.queries()))
            return out

        arrays = self._cached('test', build)
        return unpack_images(arrays, 'img_'), unpack_queries(arrays)

    def queries(self) -> List[dict]:
        """The queries of ``query_info.txt``, in line order."""
        path = osp.join(self.data_root, 'query_info.txt')
        if not osp.isfile(path):
            raise AnnotationError(f'{path}: file not found')
        queries = []
        with open(path, newline='') as f:
            for i, line in enumerate(f):
                if not line.strip():
                    continue
                queries.append(_parse_query(line, f'{path}:{i + 1}'))
        if not queries:
            raise AnnotationError(f'{path}: no query (the file is empty)')
        return queries


def prw_camera_id(name: str, where: str = '') -> int:
    """Camera id from a PRW frame name ``c<cam>s<seq>_<frame>.jpg``."""
    m = re.match(r'c(\d+)s\d+_', osp.basename(name))
    if m is None:
        raise AnnotationError(f'{where or name}: frame name {name!r} does not '
                              'follow c<cam>s<seq>_<frame>')
    return int(m.group(1))


def _parse_query(line: str, where: str) -> dict:
    parts = line.split()
    if len(parts) != 6:
        raise AnnotationError(f'{where}: expected "pid x y w h frame", got '
                              f'{line.rstrip()!r}')
    try:
        pid = int(float(parts[0]))
        box = np.array([float(v) for v in parts[1:5]])
    except ValueError:
        raise AnnotationError(f'{where}: non-numeric pid or box in '
                              f'{line.rstrip()!r}')
    if not np.isfinite(box).all():
        raise AnnotationError(f'{where}: non-finite box in {line.rstrip()!r}')
    name = parts[5] if parts[5].endswith('.jpg') else parts[5] + '.jpg'
    return dict(name=name, box=box, person_id=pid,
                cam_id=prw_camera_id(name, where), gallery=None, where=where)

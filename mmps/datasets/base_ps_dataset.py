# Copyright (c) OpenMMLab. All rights reserved.
import logging
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmengine.logging import print_log

from .native.entries import EntryBuilder
from .native_io import AnnotationError


class ImageReadError(OSError):
    """An image file that cannot be read or decoded when it is loaded."""


class BasePersonSearchDataset(BaseDetDataset):
    """Base class of person search datasets read from their native files.

    A subclass reads its native annotation files into plain records
    (:meth:`load_train_records`, :meth:`load_test_records`); this class turns
    them into mmdet ``data_list`` entries, checks the images, clips the boxes
    to their image, skips boxes of non-positive size or wholly outside their
    image (both counted in the log) and numbers the training boxes.

    Bad inputs:

    - a missing or unreadable image file: :class:`AnnotationError` at
      start-up naming how many and the first few (``check_images=True``);
    - an image that cannot be decoded when loaded (e.g. a truncated file):
      :class:`ImageReadError` naming the file and the data index;
    - a box partly outside its image: clipped (counted, logged once); a box
      of non-positive size or wholly outside: skipped (counted, logged once);
    - an image with no (valid) box: kept, with no instance; a training image
      is dropped by ``filter_cfg=dict(filter_empty_gt=True)``, a test image
      always stays a gallery image;
    - a query box partly outside its image: clipped (counted, logged once);
      of non-positive size or wholly outside: :class:`AnnotationError`
      naming the query (index, image, box). Queries are never skipped, so
      that query ``q`` stays row ``q`` of saved results.

    Train split: one entry per image, with its valid boxes (images without
    any are dropped by ``filter_cfg=dict(filter_empty_gt=True)``)::

        dict(img_path, img_id, height, width, cam_id, is_query=False,
             instances=[dict(bbox=[x1, y1, x2, y2], bbox_label=0,
                             ignore_flag=0, instance_id=k, person_id=p)])

    ``instance_id`` is the global index of the box over the training set (the
    memory slot of instance-memory methods, ``0 .. num_instances - 1``);
    ``person_id`` the dataset identity or -1 when unlabeled (weakly supervised
    methods never read it).

    Test split: one entry per gallery image (as above, ``instance_id`` -1),
    then one entry per query::

        dict(img_path, img_id, height, width, cam_id, is_query=True,
             query_id=q, query_img_index=g, gallery_img_ids=array | None,
             instances=[dict(bbox=query box, bbox_label=0, ignore_flag=0,
                             instance_id=-1, person_id=p)])

    The query box travels as the only instance so that it follows the
    geometric transforms of the image. ``query_img_index`` is the gallery
    index of the query's own image (-1 if it is not a gallery image) and
    ``gallery_img_ids`` the gallery indices of the query's gallery (None: all
    gallery images but the query's own).

    Args:
        data_root (str): Root folder of the dataset in its native layout.
        split (str): ``'train'`` or ``'test'``.
        check_images (bool): Check at start-up that every image file exists
            and read its size from the file header. Turn off only for
            annotation-only roots (e.g. protocol benchmarks). Defaults to True.
        **kwargs: Passed to :class:`mmdet.datasets.BaseDetDataset`
            (``pipeline``, ``test_mode``, ``filter_cfg``, ``indices``...).
    """

    METAINFO = dict(classes=('person', ), palette=[(220, 20, 60)])
    #: Folder of the images, relative to ``data_root``.
    img_subdir = ''

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 check_images: bool = True,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.split = split
        self.check_images = check_images
        kwargs.setdefault('test_mode', split == 'test')
        super().__init__(data_root=data_root, **kwargs)

    # -- to implement by subclasses ------------------------------------------------
    def load_train_records(self) -> List[dict]:
        """Read the training images.

        Returns:
            list[dict]: per image ``dict(name, boxes, person_ids, cam_id)``;
            ``boxes`` float64 (n, 4) x, y, w, h as in the files;
            ``person_ids`` int64 (n, ), -1 when unlabeled.
        """
        raise NotImplementedError

    def load_test_records(self):
        """Read the gallery images and the queries.

        Returns:
            tuple[list[dict], list[dict]]: gallery records as in
            :meth:`load_train_records`, and per query
            ``dict(name, box (x, y, w, h), person_id, cam_id, gallery)``
            where ``gallery`` is a list of gallery image names or None, and
            optionally ``where`` (file and position, for error messages).
        """
        raise NotImplementedError

    #: The format name of ``tools/misc/make_synthetic_dataset.py``.
    synthetic_format: str = ''

    # -- shared ---------------------------------------------------------------------
    def _missing_root_message(self) -> str:
        """What to do when ``data_root`` does not exist."""
        message = f'{self.data_root}: dataset root not found. '
        command = (f'python tools/misc/make_synthetic_dataset.py '
                   f'{self.synthetic_format} --out {self.data_root}')
        if 'synthetic' in self.data_root:
            return message + (
                'Write the synthetic sets with `make data` (from the '
                f'repository root), or this one alone with `{command}`.')
        return message + (
            f'Put the {type(self).__name__} files there (see the README, '
            '"Datasets") or point data_root at them (--cfg-options '
            f'train_dataloader.dataset.data_root=...); a synthetic set in '
            f'the same format: `{command}`.')

    @property
    def img_dir(self) -> str:
        return osp.join(self.data_root, self.img_subdir)

    def load_data_list(self) -> List[dict]:
        """Build the data list from the native files (see the class doc)."""
        self._slot_table = None  # get_slot_table() of these annotations
        if not osp.isdir(self.data_root):
            raise AnnotationError(self._missing_root_message())
        builder = EntryBuilder(self.data_root, self.img_dir, self.split,
                               self.check_images)
        #: box counts of the log: clipped, skipped (non-positive size),
        #: skipped (wholly outside the image), clipped query boxes
        self.box_stats = builder.box_stats
        if self.split == 'train':
            data_list = builder.build(self.load_train_records())
            self.num_instances = builder.num_instances
            self.num_queries = 0
        else:
            gallery, queries = self.load_test_records()
            data_list = builder.build(gallery, queries)
            self.num_queries = len(queries)
        self.num_gallery = len(data_list) - self.num_queries
        self._log_box_stats()
        return data_list

    def _log_reader_warnings(self, warnings: Sequence[str]) -> None:
        """Log what a native reader had to ignore."""
        for text in warnings:
            print_log(text, logger='current', level=logging.WARNING)

    def _log_box_stats(self) -> None:
        stats, name = self.box_stats, f'{type(self).__name__} ({self.split})'
        clipped = stats['clipped'] + stats['clipped_queries']
        if clipped:
            print_log(
                f'{name}: clipped {stats["clipped"]} box(es) and '
                f'{stats["clipped_queries"]} query box(es) to their image',
                logger='current',
                level=logging.INFO)
        skipped = [
            f'{stats[k]} box(es) {what}'
            for k, what in (('non_positive', 'of non-positive size'),
                            ('outside', 'wholly outside their image'))
            if stats[k]
        ]
        if skipped:
            print_log(
                f'{name}: skipped ' + ' and '.join(skipped),
                logger='current',
                level=logging.WARNING)

    def prepare_data(self, idx: int):
        """The pipeline's output for entry ``idx``.

        An image that cannot be read or decoded raises
        :class:`ImageReadError` naming the file and the entry, instead of the
        loading transform's own error (mmcv: ``AssertionError: failed to load
        image``, or an error from the decoder).
        """
        try:
            return super().prepare_data(idx)
        except Exception as e:
            info = self.get_data_info(idx)
            path = info.get('img_path')
            problem = _unreadable(path) if isinstance(path, str) else None
            if problem is None:
                raise
            what = f'query {info["query_id"]}' if info.get('is_query') \
                else f'image {info.get("img_id")}'
            raise ImageReadError(
                f'{path}: {problem} (entry {idx} of {type(self).__name__} '
                f'{self.split}, {what})') from e

    def filter_data(self) -> List[dict]:
        """Drop training images without boxes (``filter_cfg.filter_empty_gt``).

        Test entries are never filtered.
        """
        if self.test_mode or not self.filter_cfg or \
                not self.filter_cfg.get('filter_empty_gt', False):
            return self.data_list
        return [d for d in self.data_list if d['instances']]

    def get_slot_table(self) -> dict:
        """Per training box, indexed by instance id (memory slot).

        Built on the first call, in one pass over the data list, and kept
        (the annotations do not change after loading).

        Returns:
            dict[str, np.ndarray]: ``person_ids`` (dataset identity, -1
            unlabeled) and ``img_ids`` (``img_id`` of the box's image), each
            (num_instances, ) int64 (copies: the caller may modify them).
        """
        table = getattr(self, '_slot_table', None)
        if table is None:
            n = getattr(self, 'num_instances', 0)
            table = dict(person_ids=np.full(n, -1, np.int64),
                         img_ids=np.full(n, -1, np.int64))
            for i in range(len(self)):
                info = self.get_data_info(i)
                for inst in info['instances']:
                    slot = inst['instance_id']
                    if slot >= 0:
                        table['person_ids'][slot] = inst['person_id']
                        table['img_ids'][slot] = info['img_id']
            self._slot_table = table
        return {k: v.copy() for k, v in table.items()}

    def get_person_ids(self) -> np.ndarray:
        """Dataset identity of every training box, indexed by instance id."""
        return self.get_slot_table()['person_ids']


def _unreadable(path: str) -> Optional[str]:
    """Why a local image file cannot be used, or None (it decodes, or it is
    not a local path)."""
    if '://' in path:  # a remote backend: not checked here
        return None
    if not osp.isfile(path):
        return 'image file not found'
    try:
        import mmcv
        with open(path, 'rb') as f:
            img = mmcv.imfrombytes(f.read())
    except Exception as e:
        return f'cannot decode the image ({type(e).__name__}: {e})'
    if img is None:
        return 'cannot decode the image (truncated or corrupt file)'
    return None


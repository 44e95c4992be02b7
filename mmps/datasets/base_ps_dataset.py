# Copyright (c) OpenMMLab. All rights reserved.
import logging
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmengine.logging import print_log

from .native_io import AnnotationError


class BasePersonSearchDataset(BaseDetDataset):
    """Base class of person search datasets read from their native files.

    A subclass reads its native annotation files into plain records
    (:meth:`load_train_records`, :meth:`load_test_records`); this class turns
    them into mmdet ``data_list`` entries, checks the images, skips boxes of
    non-positive size (counted in the log) and numbers the training boxes.

    Train split: one entry per image that has at least one valid box::

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
            where ``gallery`` is a list of gallery image names or None.
        """
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------
    @property
    def img_dir(self) -> str:
        return osp.join(self.data_root, self.img_subdir)

    def load_data_list(self) -> List[dict]:
        """Build the data list from the native files (see the class doc)."""
        if not osp.isdir(self.data_root):
            raise AnnotationError(f'{self.data_root}: dataset root not found')
        self._skipped_boxes = 0
        if self.split == 'train':
            data_list = self._make_entries(self.load_train_records(),
                                           number_instances=True)
            self.num_queries = 0
        else:
            gallery, queries = self.load_test_records()
            data_list = self._make_entries(gallery, number_instances=False)
            data_list += self._make_queries(queries, data_list)
            self.num_queries = len(queries)
        self.num_gallery = len(data_list) - self.num_queries
        if self._skipped_boxes:
            print_log(
                f'{type(self).__name__} ({self.split}): skipped '
                f'{self._skipped_boxes} box(es) of non-positive size',
                logger='current',
                level=logging.WARNING)
        return data_list

    def _image_info(self, name: str) -> dict:
        path = osp.join(self.img_dir, name)
        info = dict(img_path=path, height=None, width=None)
        if self.check_images:
            if not osp.isfile(path):
                raise AnnotationError(
                    f'{path}: image file not found (listed in the '
                    f'annotations of {self.data_root}; pass '
                    'check_images=False for an annotation-only root)')
            info['width'], info['height'] = _image_size(path)
        return info

    def _valid_boxes(self, boxes: np.ndarray, info: dict) -> tuple:
        """x, y, w, h -> clipped x1, y1, x2, y2; returns (boxes, keep mask)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)
        xyxy[:, :2] = np.maximum(xyxy[:, :2], 0)  # a few boxes start at -1
        if info['width'] is not None:
            xyxy[:, 0::2] = np.minimum(xyxy[:, 0::2], info['width'])
            xyxy[:, 1::2] = np.minimum(xyxy[:, 1::2], info['height'])
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        self._skipped_boxes += int((~keep).sum())
        return xyxy, keep

    def _make_entries(self, records: Sequence[dict],
                      number_instances: bool) -> List[dict]:
        data_list, next_id = [], 0
        for rec in records:
            info = self._image_info(rec['name'])
            xyxy, keep = self._valid_boxes(rec['boxes'], info)
            pids = np.asarray(rec['person_ids'], np.int64)
            instances = []
            for box, pid in zip(xyxy[keep], pids[keep]):
                instances.append(
                    dict(
                        bbox=box.astype(np.float32).tolist(),
                        bbox_label=0,
                        ignore_flag=0,
                        instance_id=next_id if number_instances else -1,
                        person_id=int(pid)))
                next_id += number_instances
            data_list.append(
                dict(
                    **info,
                    img_id=len(data_list),
                    img_name=rec['name'],
                    cam_id=int(rec.get('cam_id', 0)),
                    is_query=False,
                    instances=instances))
        if number_instances:
            self.num_instances = next_id
        return data_list

    def _make_queries(self, queries: Sequence[dict],
                      gallery: List[dict]) -> List[dict]:
        index = {e['img_name']: i for i, e in enumerate(gallery)}
        entries = []
        for q, rec in enumerate(queries):
            g = index.get(rec['name'], -1)
            info = gallery[g] if g >= 0 else self._image_info(rec['name'])
            xyxy, keep = self._valid_boxes(rec['box'], info)
            if not keep[0]:
                raise AnnotationError(
                    f'{self.data_root}: query {q} ({rec["name"]}) has a box '
                    f'of non-positive size: {np.asarray(rec["box"]).tolist()}')
            ids = None
            if rec.get('gallery') is not None:
                missing = [n for n in rec['gallery'] if n not in index]
                if missing:
                    raise AnnotationError(
                        f'{self.data_root}: gallery of query {q} lists images '
                        f'that are not test images: {missing[:5]}')
                ids = np.array([index[n] for n in rec['gallery']], np.int64)
            entries.append(
                dict(
                    img_path=info['img_path'],
                    height=info['height'],
                    width=info['width'],
                    img_id=len(gallery) + q,
                    img_name=rec['name'],
                    cam_id=int(rec.get('cam_id', 0)),
                    is_query=True,
                    query_id=q,
                    query_img_index=g,
                    gallery_img_ids=ids,
                    instances=[
                        dict(
                            bbox=xyxy[0].astype(np.float32).tolist(),
                            bbox_label=0,
                            ignore_flag=0,
                            instance_id=-1,
                            person_id=int(rec['person_id']))
                    ]))
        return entries

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

        Returns:
            dict[str, np.ndarray]: ``person_ids`` (dataset identity, -1
            unlabeled) and ``img_ids`` (``img_id`` of the box's image).
        """
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
        return table

    def get_person_ids(self) -> np.ndarray:
        """Dataset identity of every training box, indexed by instance id."""
        return self.get_slot_table()['person_ids']


def _image_size(path: str) -> tuple:
    """(width, height) from the image header, without decoding the pixels."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as e:
        raise AnnotationError(f'{path}: unreadable image ({e})')

# Copyright (c) OpenMMLab. All rights reserved.
import logging
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmengine.logging import print_log

from .native_io import AnnotationError

#: Images named in a start-up error about missing or unreadable images.
_MAX_LISTED = 5


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
        #: box counts of the log: clipped, skipped (non-positive size),
        #: skipped (wholly outside the image), clipped query boxes
        self.box_stats = dict(
            clipped=0, non_positive=0, outside=0, clipped_queries=0)
        self._bad_images = dict(missing=[], unreadable=[])
        if self.split == 'train':
            records = self.load_train_records()
            self._check_not_empty(records)
            data_list = self._make_entries(records, number_instances=True)
            self.num_queries = 0
        else:
            gallery, queries = self.load_test_records()
            self._check_not_empty(gallery)
            data_list = self._make_entries(gallery, number_instances=False)
            data_list += self._make_queries(queries, data_list)
            self.num_queries = len(queries)
        self._raise_bad_images()
        self.num_gallery = len(data_list) - self.num_queries
        self._log_box_stats()
        return data_list

    def _check_not_empty(self, records: Sequence[dict]) -> None:
        if not records:
            raise AnnotationError(f'{self.data_root}: the annotations list no '
                                  f'{self.split} image')

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

    def _image_info(self, name: str) -> dict:
        """Path and size (from the header) of an image; a missing or
        unreadable file is recorded and reported by :meth:`_raise_bad_images`
        once every image has been checked."""
        path = osp.join(self.img_dir, name)
        info = dict(img_path=path, height=None, width=None)
        if self.check_images:
            if not osp.isfile(path):
                self._bad_images['missing'].append(path)
                return info
            try:
                info['width'], info['height'] = _image_size(path)
            except AnnotationError as e:
                self._bad_images['unreadable'].append(str(e))
        return info

    def _raise_bad_images(self) -> None:
        missing = self._bad_images['missing']
        unreadable = self._bad_images['unreadable']
        if not missing and not unreadable:
            return
        lines = []
        if missing:
            lines.append(f'{len(missing)} image file(s) not found, e.g. ' +
                         ', '.join(missing[:_MAX_LISTED]))
        if unreadable:
            lines.append(f'{len(unreadable)} unreadable image file(s), e.g. ' +
                         '; '.join(unreadable[:_MAX_LISTED]))
        raise AnnotationError(
            f'{self.data_root} ({self.split}): ' + '; '.join(lines) +
            ' (pass check_images=False for an annotation-only root)')

    def _valid_boxes(self, boxes: np.ndarray, info: dict,
                     count: bool = True) -> tuple:
        """x, y, w, h -> clipped x1, y1, x2, y2.

        Returns:
            tuple: ``(xyxy, keep, clipped, outside)``: the clipped boxes, the
            boxes kept (positive size after clipping), the boxes that were
            clipped, and the boxes of positive size wholly outside the image.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        raw = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)
        xyxy = raw.copy()
        xyxy[:, :2] = np.maximum(xyxy[:, :2], 0)  # a few boxes start at -1
        if info['width'] is not None:
            xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, info['width'])
            xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, info['height'])
        positive = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        outside = positive & ~keep
        clipped = keep & (xyxy != raw).any(1)
        if count:
            self.box_stats['clipped'] += int(clipped.sum())
            self.box_stats['non_positive'] += int((~positive).sum())
            self.box_stats['outside'] += int(outside.sum())
        return xyxy, keep, clipped, outside

    def _make_entries(self, records: Sequence[dict],
                      number_instances: bool) -> List[dict]:
        data_list, next_id = [], 0
        for rec in records:
            info = self._image_info(rec['name'])
            xyxy, keep = self._valid_boxes(rec['boxes'], info)[:2]
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
            xyxy, keep, clipped, outside = self._valid_boxes(
                rec['box'], info, count=False)
            if not keep[0]:
                size = '' if info['width'] is None else \
                    f' ({info["width"]} x {info["height"]})'
                what = f'lies wholly outside its image{size}' \
                    if outside[0] else 'has a non-positive size'
                raise AnnotationError(
                    f'{rec.get("where", self.data_root)}: query {q} (image '
                    f'{rec["name"]}, box x, y, w, h = '
                    f'{np.asarray(rec["box"]).tolist()}) {what}')
            self.box_stats['clipped_queries'] += int(clipped[0])
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


def _image_size(path: str) -> tuple:
    """(width, height) from the image header, without decoding the pixels."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as e:
        raise AnnotationError(f'{path}: unreadable image ({e})')

# Copyright (c) OpenMMLab. All rights reserved.
"""Records -> the data-list entries of a person search dataset (numpy only).

:class:`mmps.datasets.BasePersonSearchDataset` builds its ``data_list`` here
and so does ``tools/analysis_tools/eval_search.py`` (without mmengine): the
test loop, the metric and the offline evaluator see the same boxes. See the
dataset class for the entry format and the rules on bad boxes.
"""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

from ..native_io import AnnotationError

__all__ = ['EntryBuilder', 'image_size']

#: Images named in a start-up error about missing or unreadable images.
_MAX_LISTED = 5


class EntryBuilder:
    """Turns image and query records into data-list entries.

    Args:
        data_root (str): Dataset root (for error messages).
        img_dir (str): Folder of the images.
        split (str): ``'train'`` or ``'test'``.
        check_images (bool): Check that every image exists and read its size
            from the header.

    Attributes:
        box_stats (dict): Boxes clipped, skipped (non-positive size, wholly
            outside their image) and query boxes clipped.
    """

    def __init__(self, data_root: str, img_dir: str, split: str,
                 check_images: bool = True) -> None:
        self.data_root, self.img_dir = data_root, img_dir
        self.split, self.check_images = split, check_images
        self.box_stats = dict(
            clipped=0, non_positive=0, outside=0, clipped_queries=0)
        self.bad_images = dict(missing=[], unreadable=[])
        self.num_instances = 0

    def build(self, records: Sequence[dict],
              queries: Optional[Sequence[dict]] = None) -> List[dict]:
        """Entries of the images (train: numbered instances) and then of the
        queries (test split), after checking the images."""
        if not records:
            raise AnnotationError(f'{self.data_root}: the annotations list no '
                                  f'{self.split} image')
        data_list = self.make_entries(records, number_instances=queries is None)
        if queries is not None:
            data_list += self.make_queries(queries, data_list)
        self.raise_bad_images()
        return data_list

    def image_info(self, name: str) -> dict:
        """Path and size (from the header) of an image; a missing or
        unreadable file is recorded and reported by :meth:`raise_bad_images`
        once every image has been checked."""
        path = osp.join(self.img_dir, name)
        info = dict(img_path=path, height=None, width=None)
        if self.check_images:
            if not osp.isfile(path):
                self.bad_images['missing'].append(path)
                return info
            try:
                info['width'], info['height'] = image_size(path)
            except AnnotationError as e:
                self.bad_images['unreadable'].append(str(e))
        return info

    def raise_bad_images(self) -> None:
        """Raise :class:`AnnotationError` naming missing / unreadable images."""
        missing = self.bad_images['missing']
        unreadable = self.bad_images['unreadable']
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

    def valid_boxes(self, boxes: np.ndarray, info: dict,
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

    def make_entries(self, records: Sequence[dict],
                     number_instances: bool) -> List[dict]:
        """One entry per image record."""
        data_list, next_id = [], 0
        for rec in records:
            info = self.image_info(rec['name'])
            xyxy, keep = self.valid_boxes(rec['boxes'], info)[:2]
            pids = np.asarray(rec['person_ids'], np.int64)
            instances = []
            for box, pid in zip(xyxy[keep].astype(np.float32).tolist(),
                                pids[keep].tolist()):
                instances.append(
                    dict(
                        bbox=box,
                        bbox_label=0,
                        ignore_flag=0,
                        instance_id=next_id if number_instances else -1,
                        person_id=pid))
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

    def _gallery_ids(self, q: int, rec: dict, index: dict,
                     num_gallery: int) -> Optional[np.ndarray]:
        """Gallery indices of a query's gallery (None: all but its own)."""
        if rec.get('gallery_idx') is not None:
            ids = np.asarray(rec['gallery_idx'], np.int64)
            bad = (ids < 0) | (ids >= num_gallery)
            if bad.any():
                raise AnnotationError(
                    f'{self.data_root}: gallery of query {q} lists gallery '
                    f'indices out of range: {ids[bad][:5].tolist()}')
            return ids
        if rec.get('gallery') is None:
            return None
        missing = [n for n in rec['gallery'] if n not in index]
        if missing:
            raise AnnotationError(
                f'{self.data_root}: gallery of query {q} lists images '
                f'that are not test images: {missing[:5]}')
        return np.array([index[n] for n in rec['gallery']], np.int64)

    def make_queries(self, queries: Sequence[dict],
                     gallery: List[dict]) -> List[dict]:
        """One entry per query record (the query box as the only
        instance)."""
        index = {e['img_name']: i for i, e in enumerate(gallery)}
        entries = []
        for q, rec in enumerate(queries):
            g = index.get(rec['name'], -1)
            info = gallery[g] if g >= 0 else self.image_info(rec['name'])
            xyxy, keep, clipped, outside = self.valid_boxes(
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
                    gallery_img_ids=self._gallery_ids(q, rec, index,
                                                      len(gallery)),
                    instances=[
                        dict(
                            bbox=xyxy[0].astype(np.float32).tolist(),
                            bbox_label=0,
                            ignore_flag=0,
                            instance_id=-1,
                            person_id=int(rec['person_id']))
                    ]))
        return entries


def image_size(path: str) -> tuple:
    """(width, height) from the image header, without decoding the pixels."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as e:
        raise AnnotationError(f'{path}: unreadable image ({e})')

# Copyright (c) OpenMMLab. All rights reserved.
"""The test split of a person search dataset: records and flat arrays.

A test split is a set of gallery images (:class:`GalleryRecord`: boxes and
identities) and of queries (:class:`QueryRecord`: a box, its identity, its
own image and, on CUHK-SYSU, the list of its gallery images).
:class:`PersonSearchProtocol` holds them as flat arrays, the input of
:mod:`~mmps.evaluation.functional.detection` and
:mod:`~mmps.evaluation.functional.search`. It is built from records
(:meth:`PersonSearchProtocol.from_records`, as the metric keeps them) or from
the entries of a dataset (:meth:`PersonSearchProtocol.from_data_infos`).

Only numpy is imported here.
"""
from dataclasses import dataclass, field, fields
from typing import Optional, Sequence, Tuple

import numpy as np


@dataclass
class GalleryRecord:
    """One gallery image of a test split.

    Args:
        img_id (int): The image's gallery index in the dataset (its
            ``img_id``); queries name their images by it.
        img_name (str): Image name. Defaults to ``str(img_id)``.
        cam_id (int): Camera id. Defaults to 0.
        gt_boxes (np.ndarray): (n, 4) x1, y1, x2, y2 in pixels of the original
            image. Defaults to no box.
        gt_pids (np.ndarray): (n, ) identities, -1 when unlabeled.
            Defaults to no box.
    """

    img_id: int
    img_name: Optional[str] = None
    cam_id: int = 0
    gt_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    gt_pids: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        self.img_id = int(self.img_id)
        if self.img_name is None:
            self.img_name = str(self.img_id)
        self.cam_id = int(self.cam_id)
        self.gt_boxes = np.asarray(self.gt_boxes, np.float64).reshape(-1, 4)
        self.gt_pids = np.asarray(self.gt_pids, np.int64).reshape(-1)
        if len(self.gt_pids) != len(self.gt_boxes):
            raise ValueError(f'GalleryRecord {self.img_id}: '
                             f'{len(self.gt_pids)} gt_pids for '
                             f'{len(self.gt_boxes)} gt_boxes')


@dataclass
class QueryRecord:
    """One query of a test split.

    Args:
        query_id (int): Query index in the dataset.
        box (np.ndarray): (4, ) x1, y1, x2, y2 of the query person.
        person_id (int): Its identity, -1 when unlabeled. Defaults to -1.
        cam_id (int): Camera id. Defaults to 0.
        query_img_index (int): ``img_id`` of the query's own image when it
            is a gallery image, else -1 (None reads as -1). Defaults to -1.
        gallery_img_ids (np.ndarray, optional): ``img_id`` of the images of
            the query's gallery (CUHK-SYSU ``TestG<S>``); None: every gallery
            image but the query's own. Defaults to None.
    """

    query_id: int
    box: np.ndarray
    person_id: int = -1
    cam_id: int = 0
    query_img_index: Optional[int] = -1
    gallery_img_ids: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.query_id = int(self.query_id)
        self.box = np.asarray(self.box, np.float64).reshape(4)
        self.person_id = int(self.person_id)
        self.cam_id = int(self.cam_id)
        own = self.query_img_index
        self.query_img_index = -1 if own is None or own < 0 else int(own)
        if self.gallery_img_ids is not None:
            self.gallery_img_ids = np.asarray(self.gallery_img_ids,
                                              np.int64).reshape(-1)


@dataclass
class PersonSearchProtocol:
    """The test split of a person search dataset as flat arrays.

    ``G`` gallery images, ``N`` ground-truth boxes, ``Q`` queries. Gallery
    images are indexed ``0 .. G - 1`` in ``img_id`` order, queries
    ``0 .. Q - 1`` in ``query_id`` order (the order of ``query_feats``).

    Args:
        img_names (np.ndarray): (G, ) str, gallery image names.
        img_cams (np.ndarray): (G, ) int64, gallery camera ids.
        gt_offsets (np.ndarray): (G + 1, ) int64, the boxes of image ``g`` are
            ``gt_offsets[g]:gt_offsets[g + 1]`` of the arrays below.
        gt_boxes (np.ndarray): (N, 4) float64, x1, y1, x2, y2 in pixels of the
            original image.
        gt_pids (np.ndarray): (N, ) int64, identities, -1 when unlabeled.
        query_pids (np.ndarray): (Q, ) int64, query identities.
        query_cams (np.ndarray): (Q, ) int64, query camera ids.
        query_img (np.ndarray): (Q, ) int64, gallery index of each query's own
            image, -1 when it is not a gallery image.
        query_boxes (np.ndarray): (Q, 4) float64, query boxes (for reference;
            the evaluation does not read them).
        gallery_offsets (np.ndarray, optional): (Q + 1, ) int64, the gallery of
            query ``q`` is ``gallery_ids[gallery_offsets[q]:gallery_offsets[q +
            1]]`` (CUHK-SYSU ``TestG<S>``). None: every gallery image but the
            query's own.
        gallery_ids (np.ndarray, optional): flat int64 gallery indices, no
            repeats within a query's list; None with ``gallery_offsets``.
    """

    img_names: np.ndarray
    img_cams: np.ndarray
    gt_offsets: np.ndarray
    gt_boxes: np.ndarray
    gt_pids: np.ndarray
    query_pids: np.ndarray
    query_cams: np.ndarray
    query_img: np.ndarray
    query_boxes: np.ndarray
    gallery_offsets: Optional[np.ndarray] = None
    gallery_ids: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.img_names = np.asarray(self.img_names, dtype=str).reshape(-1)
        for name in ('img_cams', 'gt_offsets', 'gt_pids', 'query_pids',
                     'query_cams', 'query_img'):
            setattr(self, name,
                    np.asarray(getattr(self, name), np.int64).reshape(-1))
        self.gt_boxes = np.asarray(self.gt_boxes, np.float64).reshape(-1, 4)
        self.query_boxes = np.asarray(self.query_boxes,
                                      np.float64).reshape(-1, 4)
        G, Q = len(self.img_names), len(self.query_pids)
        _expect(len(self.img_cams) == G, 'img_cams', (G, ), self.img_cams)
        _expect(len(self.gt_offsets) == G + 1, 'gt_offsets', (G + 1, ),
                self.gt_offsets)
        N = int(self.gt_offsets[-1])
        _expect(self.gt_offsets[0] == 0 and np.all(np.diff(self.gt_offsets)
                                                   >= 0),
                'gt_offsets', 'non-decreasing from 0', self.gt_offsets)
        _expect(len(self.gt_boxes) == N, 'gt_boxes', (N, 4), self.gt_boxes)
        _expect(len(self.gt_pids) == N, 'gt_pids', (N, ), self.gt_pids)
        for name in ('query_cams', 'query_img', 'query_boxes'):
            _expect(len(getattr(self, name)) == Q, name, (Q, ),
                    getattr(self, name))
        _expect(np.all((self.query_img >= -1) & (self.query_img < G)),
                'query_img', f'values in [-1, {G})', self.query_img)
        if (self.gallery_offsets is None) != (self.gallery_ids is None):
            raise ValueError('PersonSearchProtocol: gallery_offsets and '
                             'gallery_ids must both be given or both be None')
        if self.gallery_offsets is not None:
            self.gallery_offsets = np.asarray(self.gallery_offsets,
                                              np.int64).reshape(-1)
            self.gallery_ids = np.asarray(self.gallery_ids,
                                          np.int64).reshape(-1)
            off = self.gallery_offsets
            _expect(
                len(off) == Q + 1 and off[0] == 0
                and np.all(np.diff(off) >= 0)
                and off[-1] == len(self.gallery_ids), 'gallery_offsets',
                f'({Q + 1}, ) non-decreasing from 0 to len(gallery_ids)', off)
            _expect(
                np.all((self.gallery_ids >= 0) & (self.gallery_ids < G)),
                'gallery_ids', f'values in [0, {G})', self.gallery_ids)
            for q in range(Q):
                gal = self.gallery_ids[off[q]:off[q + 1]]
                if len(gal) > 1 and np.bincount(gal).max() > 1:
                    raise ValueError(f'PersonSearchProtocol: the gallery of '
                                     f'query {q} lists an image more than '
                                     'once')

    @property
    def num_images(self) -> int:
        """Number of gallery images."""
        return len(self.img_names)

    @property
    def num_queries(self) -> int:
        """Number of queries."""
        return len(self.query_pids)

    @property
    def img_of_gt(self) -> np.ndarray:
        """(N, ) gallery index of every ground-truth box."""
        return np.repeat(
            np.arange(self.num_images), np.diff(self.gt_offsets))

    def gallery(self, q: int) -> Optional[np.ndarray]:
        """Gallery indices listed for query ``q`` (None: all but its own)."""
        if self.gallery_offsets is None:
            return None
        return self.gallery_ids[
            self.gallery_offsets[q]:self.gallery_offsets[q + 1]]

    def __eq__(self, other) -> bool:
        if not isinstance(other, PersonSearchProtocol):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if (a is None) != (b is None):
                return False
            if a is not None and not np.array_equal(a, b):
                return False
        return True

    @classmethod
    def from_records(cls, gallery: Sequence[GalleryRecord],
                     queries: Sequence[QueryRecord]
                     ) -> 'PersonSearchProtocol':
        """Build the protocol from gallery and query records.

        Records may come in any order: gallery images are indexed in
        ``img_id`` order, queries in ``query_id`` order. An image listed twice
        in a query's ``gallery_img_ids`` is kept once (its first occurrence).

        Args:
            gallery (Sequence[GalleryRecord]): The gallery images.
            queries (Sequence[QueryRecord]): The queries.

        Returns:
            PersonSearchProtocol: The protocol.

        Raises:
            ValueError: Two records share an ``img_id`` or a ``query_id``, a
                query names an image that is not a gallery image, or only
                some queries list their gallery.
        """
        gallery = sorted(gallery, key=lambda g: g.img_id)
        queries = sorted(queries, key=lambda q: q.query_id)
        g_ids = np.array([g.img_id for g in gallery], np.int64)
        if np.any(np.diff(g_ids) == 0):
            raise ValueError('PersonSearchProtocol: gallery records repeat '
                             'an img_id')
        q_ids = np.array([q.query_id for q in queries], np.int64)
        if np.any(np.diff(q_ids) == 0):
            raise ValueError('PersonSearchProtocol: query records repeat a '
                             'query_id')

        def positions(ids, where):
            """Gallery img_ids -> gallery indices (an error if unknown)."""
            ids = np.asarray(ids, np.int64).reshape(-1)
            p = np.searchsorted(g_ids, ids)
            bad = p >= len(g_ids)
            bad[~bad] = g_ids[p[~bad]] != ids[~bad]
            if bad.any():
                raise ValueError(f'{where} {ids[bad][:5].tolist()} are not '
                                 'gallery img_ids of these records')
            return p

        q_img, lists = [], []
        for q in queries:
            where = f'PersonSearchProtocol: query {q.query_id}'
            own = q.query_img_index
            q_img.append(
                positions([own], f'{where}: query_img_index')[0]
                if own >= 0 else -1)
            ids = q.gallery_img_ids
            if ids is not None:
                ids = positions(ids, f'{where}: gallery_img_ids')
                if len(ids) > 1 and np.bincount(ids).max() > 1:
                    # keep the first occurrence of a repeated image
                    _, first = np.unique(ids, return_index=True)
                    ids = ids[np.sort(first)]
            lists.append(ids)
        has_list = [x is not None for x in lists]
        if any(has_list) and not all(has_list):
            raise ValueError('PersonSearchProtocol: some queries list their '
                             'gallery (gallery_img_ids) and others do not')
        offsets = ids = None
        if lists and all(has_list):
            offsets = np.concatenate(
                [[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
            ids = np.concatenate(lists).astype(np.int64)

        return cls(
            img_names=np.array([g.img_name for g in gallery], dtype=str),
            img_cams=np.array([g.cam_id for g in gallery], np.int64),
            gt_offsets=np.concatenate(
                [[0], np.cumsum([len(g.gt_pids) for g in gallery],
                                dtype=np.int64)]),
            gt_boxes=np.concatenate([g.gt_boxes for g in gallery] +
                                    [np.zeros((0, 4))]),
            gt_pids=np.concatenate([g.gt_pids for g in gallery] +
                                   [np.zeros(0, np.int64)]),
            query_pids=np.array([q.person_id for q in queries], np.int64),
            query_cams=np.array([q.cam_id for q in queries], np.int64),
            query_img=np.array(q_img, np.int64),
            query_boxes=np.array([q.box for q in queries],
                                 np.float64).reshape(-1, 4),
            gallery_offsets=offsets,
            gallery_ids=ids)

    @classmethod
    def from_data_infos(cls, data_infos: Sequence[dict]
                        ) -> 'PersonSearchProtocol':
        """Build the protocol from the test-split entries of a dataset.

        See :class:`mmps.datasets.BasePersonSearchDataset`: gallery entries
        (``is_query`` False) carry ``img_id``, ``img_name``, ``cam_id`` and
        ``instances`` (``bbox`` x1, y1, x2, y2, ``person_id``); query entries
        ``query_id``, ``cam_id``, ``query_img_index``, ``gallery_img_ids``
        (gallery indices, i.e. the ``img_id`` of gallery entries, or None) and
        the query box as the only instance. Entries may come in any order.

        Args:
            data_infos (Sequence[dict]): Test-split entries.

        Returns:
            PersonSearchProtocol: The protocol (see :meth:`from_records`).
        """
        gallery, queries = [], []
        for d in data_infos:
            inst = d['instances']
            if not d.get('is_query'):
                gallery.append(
                    GalleryRecord(
                        img_id=d['img_id'],
                        img_name=d.get('img_name'),
                        cam_id=d.get('cam_id', 0),
                        gt_boxes=[i['bbox'] for i in inst],
                        gt_pids=[i.get('person_id', -1) for i in inst]))
                continue
            if len(inst) < 1:
                raise ValueError(f'from_data_infos: query {d["query_id"]} has '
                                 'no instance (the query box)')
            queries.append(
                QueryRecord(
                    query_id=d['query_id'],
                    box=inst[0]['bbox'],
                    person_id=inst[0].get('person_id', -1),
                    cam_id=d.get('cam_id', 0),
                    query_img_index=d.get('query_img_index', -1),
                    gallery_img_ids=d.get('gallery_img_ids')))
        return cls.from_records(gallery, queries)


def _expect(ok, name: str, what, value) -> None:
    if not ok:
        shape = getattr(value, 'shape', None)
        raise ValueError(f'PersonSearchProtocol: {name} must be {what}, got '
                         f'shape {shape}')


def check_detections(protocol: PersonSearchProtocol,
                     det_img: np.ndarray,
                     dets: np.ndarray,
                     det_feats: Optional[np.ndarray] = None) -> Tuple:
    """Detections of a protocol's gallery as checked numpy arrays.

    Args:
        protocol (PersonSearchProtocol): The test split.
        det_img (np.ndarray): (M, ) gallery index of every detection.
        dets (np.ndarray): (M, 5) x1, y1, x2, y2, score.
        det_feats (np.ndarray, optional): (M, D) detection features.

    Returns:
        tuple: ``det_img`` (M, ) int64, ``dets`` (M, 5) and ``det_feats``
        (M, D) or None.

    Raises:
        ValueError: A shape does not fit, ``det_img`` does not index the
            gallery, or a row holds a NaN or an Inf.
    """
    det_img = np.asarray(det_img, np.int64).reshape(-1)
    dets = np.asarray(dets)
    if dets.size == 0:
        dets = dets.reshape(0, 5)
    if dets.ndim != 2 or dets.shape[1] != 5 or len(dets) != len(det_img):
        raise ValueError(
            f'dets must be ({len(det_img)}, 5) [x1, y1, x2, y2, score] '
            f'(one row per det_img entry), got shape {dets.shape}')
    if len(det_img) and (det_img.min() < 0
                         or det_img.max() >= protocol.num_images):
        raise ValueError(f'det_img must index the {protocol.num_images} '
                         'gallery images of the protocol')
    check_finite(dets, 'dets')
    if det_feats is not None:
        det_feats = np.asarray(det_feats)
        if det_feats.ndim != 2 or len(det_feats) != len(det_img):
            raise ValueError(f'det_feats must be ({len(det_img)}, D), got '
                             f'shape {det_feats.shape}')
        check_finite(det_feats, 'det_feats')
    return det_img, dets, det_feats


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if a row of a 2-d array holds a NaN or an Inf (a diverged model
    would otherwise be ranked silently)."""
    if arr.size and arr.dtype.kind in 'fc':
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(bad):
            raise ValueError(f'{name} has {len(bad)} row(s) with NaN or Inf '
                             f'values, e.g. row(s) {bad[:5].tolist()}')


__all__ = ['GalleryRecord', 'QueryRecord', 'PersonSearchProtocol']

# Copyright (c) OpenMMLab. All rights reserved.
"""A searchable gallery: every detection of a set of images with its feature.

Built once (e.g. by :meth:`mmps.apis.PersonSearcher.build_index`), saved to
and loaded from an ``.npz`` file, and queried many times
(:meth:`GalleryIndex.search`, pure numpy). A data structure only: it imports
nothing from ``mmps.apis`` or ``mmps.engine``.

The file holds plain arrays and a JSON ``meta`` string, no pickled objects,
so no class path is stored: a file written while the class lived in
``mmps.apis.gallery_index`` loads unchanged.
"""
import json
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

#: Arrays of an index file (besides the JSON ``meta``).
INDEX_FIELDS = ('img_paths', 'det_img', 'boxes', 'scores', 'feats')
#: Version of the index file layout.
INDEX_FORMAT = 1


class GalleryIndexError(ValueError):
    """A gallery index file that is unreadable or does not fit the model."""


@dataclass
class SearchHit:
    """One ranked gallery detection.

    Attributes:
        rank (int): 1 for the best match.
        img_path (str): The gallery image.
        img_index (int): Its index in :attr:`GalleryIndex.img_paths`.
        box (tuple[float]): ``x1, y1, x2, y2`` in original image pixels.
        score (float): Detection score.
        similarity (float): Cosine similarity to the query.
    """
    rank: int
    img_path: str
    img_index: int
    box: tuple
    score: float
    similarity: float

    def to_dict(self) -> dict:
        """The hit as a plain dict."""
        return asdict(self)


class GalleryIndex:
    """Detections of a gallery with their re-id features.

    Every detection the model returned is kept (the detection threshold is
    applied at search time). ``model_id`` fingerprints the model that made
    the features (config and weights, see
    :attr:`mmps.apis.PersonSearcher.model_id`): features of another model
    are not comparable, and the searcher refuses such an index.

    Args:
        img_paths (Sequence[str]): The gallery images.
        det_img (np.ndarray): (M, ) index in ``img_paths`` of every detection.
        boxes (np.ndarray): (M, 4) ``x1, y1, x2, y2``, original pixels.
        scores (np.ndarray): (M, ) detection scores.
        feats (np.ndarray): (M, D) the model's features (unit-norm, or of
            norm <= 1 with the reference's un-normalised fused features).
        model_id (str): Fingerprint of the model. Defaults to ''.
        meta (dict, optional): Description of the model (``config``,
            ``checkpoint``), for messages only.
    """

    def __init__(self,
                 img_paths: Sequence[str],
                 det_img: np.ndarray,
                 boxes: np.ndarray,
                 scores: np.ndarray,
                 feats: np.ndarray,
                 model_id: str = '',
                 meta: Optional[dict] = None) -> None:
        self.img_paths = [str(p) for p in img_paths]
        self.det_img = np.asarray(det_img, np.int64).reshape(-1)
        self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(scores, np.float32).reshape(-1)
        feats = np.asarray(feats, np.float32)
        self.feats = feats.reshape(len(self.det_img), -1) \
            if feats.ndim != 2 else feats
        self.model_id = str(model_id)
        self.meta = dict(meta or {})
        num = len(self.det_img)
        for name in ('boxes', 'scores', 'feats'):
            if len(getattr(self, name)) != num:
                raise GalleryIndexError(
                    f'GalleryIndex: {name} has {len(getattr(self, name))} '
                    f'rows but det_img has {num}')
        if num and not (0 <= self.det_img.min()
                        and self.det_img.max() < len(self.img_paths)):
            raise GalleryIndexError(
                'GalleryIndex: det_img must index img_paths '
                f'(0 .. {len(self.img_paths) - 1})')

    @property
    def num_images(self) -> int:
        return len(self.img_paths)

    @property
    def feat_dim(self) -> int:
        return self.feats.shape[1]

    def __len__(self) -> int:
        """Number of detections (all scores)."""
        return len(self.det_img)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_images} images, '
                f'{len(self)} detections, dim {self.feat_dim}, '
                f'model {self.model_id[:12] or "?"})')

    # ------------------------------------------------------------------ #
    # files
    # ------------------------------------------------------------------ #
    def save(self, path: str) -> None:
        """Write the index to an ``.npz`` file (no pickled objects).

        Args:
            path (str): The file; ``.npz`` is appended by numpy if missing.
        """
        meta = dict(self.meta, format=INDEX_FORMAT, model_id=self.model_id)
        dirname = osp.dirname(osp.abspath(path))
        if not osp.isdir(dirname):
            raise FileNotFoundError(f'{path}: folder {dirname} not found')
        np.savez(
            path,
            img_paths=np.asarray(self.img_paths, dtype=np.str_).reshape(-1),
            det_img=self.det_img,
            boxes=self.boxes,
            scores=self.scores,
            feats=self.feats,
            meta=np.asarray(json.dumps(meta)))

    @classmethod
    def load(cls, path: str) -> 'GalleryIndex':
        """Read an index written by :meth:`save`.

        Args:
            path (str): The ``.npz`` file.

        Returns:
            GalleryIndex: The index.

        Raises:
            FileNotFoundError: No such file.
            GalleryIndexError: Not a gallery index file.
        """
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: gallery index file not found')
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in INDEX_FIELDS + ('meta', )
                           if k not in data.files]
                if missing:
                    raise GalleryIndexError(
                        f'{path}: not a gallery index file (no '
                        f'{", ".join(missing)})')
                arrays = {k: data[k] for k in INDEX_FIELDS}
                meta = json.loads(str(data['meta']))
        except GalleryIndexError:
            raise
        except Exception as e:
            raise GalleryIndexError(
                f'{path}: not a readable gallery index file ({e})') from e
        if meta.get('format') != INDEX_FORMAT:
            raise GalleryIndexError(
                f'{path}: index format {meta.get("format")!r}, this mmps '
                f'reads format {INDEX_FORMAT}: rebuild the index')
        model_id = meta.pop('model_id', '')
        meta.pop('format')
        try:
            return cls(
                img_paths=arrays['img_paths'].tolist(),
                det_img=arrays['det_img'],
                boxes=arrays['boxes'],
                scores=arrays['scores'],
                feats=arrays['feats'],
                model_id=model_id,
                meta=meta)
        except GalleryIndexError as e:
            raise GalleryIndexError(f'{path}: {e}') from e

    # ------------------------------------------------------------------ #
    # search
    # ------------------------------------------------------------------ #
    def check_model(self, model_id: str, describe: str = '') -> None:
        """Raise unless the index was built by the model ``model_id``.

        Args:
            model_id (str): Fingerprint of the searching model.
            describe (str): How to name that model in the message.

        Raises:
            GalleryIndexError: Another model built the index.
        """
        if self.model_id != model_id:
            built = ', '.join(f'{k} {v}' for k, v in self.meta.items()
                              if k in ('config', 'checkpoint'))
            raise GalleryIndexError(
                f'the gallery index was built by another model (config / '
                f'weights fingerprint {self.model_id[:12] or "none"}'
                f'{": " + built if built else ""}) than this one '
                f'({model_id[:12]}{": " + describe if describe else ""}); '
                'features of different models cannot be compared: rebuild '
                'the index with this model')

    def search(self,
               query_feats: Union[np.ndarray, torch.Tensor],
               topk: Optional[int] = 10,
               det_thresh: float = 0.5,
               exclude_imgs: Optional[Sequence[str]] = None,
               img_indices: Optional[Sequence[int]] = None
               ) -> Union[List[SearchHit], List[List[SearchHit]]]:
        """Rank the gallery detections by feature similarity (dot product).

        Args:
            query_feats (np.ndarray or Tensor): (D, ) one query or (Q, D)
                queries, as the model gives them.
            topk (int, optional): Hits per query; None for all.
                Defaults to 10.
            det_thresh (float): Minimum detection score (the protocol's 0.5).
                Defaults to 0.5.
            exclude_imgs (Sequence[str], optional): Gallery images to skip
                (e.g. the query's own image), compared by real path.
            img_indices (Sequence[int], optional): Search these images of
                :attr:`img_paths` only (a query's own gallery); None: all.

        Returns:
            list[SearchHit] for one (D, ) query, list[list[SearchHit]] for
            (Q, D) queries: best first (ties by detection order).
        """
        if isinstance(query_feats, torch.Tensor):
            query_feats = query_feats.detach().float().cpu().numpy()
        q = np.asarray(query_feats, np.float32)
        single = q.ndim == 1
        q = q.reshape(1, -1) if single else q
        if q.ndim != 2 or q.shape[1] != self.feat_dim:
            raise ValueError(
                f'query features of shape {tuple(np.shape(query_feats))} do '
                f'not fit the index (dim {self.feat_dim})')
        keep = self.scores >= det_thresh
        if img_indices is not None:
            in_gallery = np.zeros(self.num_images, bool)
            in_gallery[np.asarray(img_indices, np.int64).reshape(-1)] = True
            keep &= in_gallery[self.det_img]
        if exclude_imgs:
            skip = {osp.realpath(p) for p in exclude_imgs}
            skip_img = np.array(
                [osp.realpath(p) in skip for p in self.img_paths], bool)
            keep &= ~skip_img[self.det_img]
        inds = np.flatnonzero(keep)
        sims = q @ self.feats[inds].T  # (Q, m)
        k = len(inds) if topk is None else min(int(topk), len(inds))
        results = []
        for row in sims:
            order = np.argsort(-row, kind='stable')[:k]
            results.append([self._hit(r + 1, inds[j], row[j])
                            for r, j in enumerate(order)])
        return results[0] if single else results

    def _hit(self, rank: int, det: int, sim: float) -> SearchHit:
        img = int(self.det_img[det])
        return SearchHit(
            rank=rank,
            img_path=self.img_paths[img],
            img_index=img,
            box=tuple(float(v) for v in self.boxes[det]),
            score=float(self.scores[det]),
            similarity=float(sim))

    def detections_of(self, img_index: int) -> Dict[str, np.ndarray]:
        """``boxes``, ``scores``, ``feats`` of one gallery image."""
        sel = self.det_img == img_index
        return dict(
            boxes=self.boxes[sel], scores=self.scores[sel],
            feats=self.feats[sel])

# Copyright (c) OpenMMLab. All rights reserved.
"""Person search on one's own images: embed a query, index a gallery, rank.

Example::

    from mmps.apis import PersonSearcher

    searcher = PersonSearcher('configs/dicl_synthetic_prw.py', 'epoch_50.pth')
    query = searcher.embed_query('query.jpg', (381, 88, 400, 135))
    index = searcher.build_index('gallery/*.jpg')   # once; index.save(...)
    for hit in searcher.search(index, query, topk=5):
        print(hit.rank, hit.img_path, hit.box, hit.score, hit.similarity)
"""
import copy
import glob
import hashlib
import json
import logging
import os
import os.path as osp
from contextlib import nullcontext
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.utils import ProgressBar
from torch import Tensor

from mmps.engine import trusted_local_checkpoints
from mmps.registry import MODELS
from mmps.utils import register_all_modules
from .gallery_index import GalleryIndex, SearchHit

#: File name endings of gallery images found in a folder.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')

ImageType = Union[str, np.ndarray]
GalleryType = Union[str, Sequence[str]]


def list_gallery_images(gallery: GalleryType) -> List[str]:
    """The image files of a gallery.

    Args:
        gallery (str or Sequence[str]): A folder (its images, sorted), a glob
            pattern (``'frames/c1*.jpg'``, sorted), one image file, or a list
            of image files (kept in order).

    Returns:
        list[str]: Image paths.

    Raises:
        FileNotFoundError: A listed file is missing, or nothing matches.
    """
    if isinstance(gallery, str):
        if osp.isdir(gallery):
            paths = sorted(
                osp.join(gallery, f) for f in os.listdir(gallery)
                if f.lower().endswith(IMG_EXTENSIONS))
        elif osp.isfile(gallery):
            paths = [gallery]
        else:
            paths = sorted(p for p in glob.glob(gallery) if osp.isfile(p))
        if not paths:
            raise FileNotFoundError(
                f'no gallery image found in {gallery!r} (a folder of '
                f'{"/".join(IMG_EXTENSIONS)} files, a glob pattern or a file)')
        return paths
    paths = [str(p) for p in gallery]
    if not paths:
        raise ValueError('the gallery is an empty list of images')
    for path in paths:
        _check_image_file(path, 'gallery image')
    return paths


def _check_image_file(path: str, what: str = 'image') -> None:
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path}')


class PersonSearcher:
    """Person search inference with a trained model, on any images.

    The model is built and its weights loaded once; images go through the
    config's test pipeline (``test_dataloader.dataset.pipeline``, its image
    loader swapped for one that also takes arrays) and the model's own
    query / gallery inference (:meth:`PersonSearchDetector.predict`):

    - :meth:`embed_query`: the feature of a person box (the query path: the
      box is the query sample's only instance);
    - :meth:`build_index`: every detection of a set of gallery images with
      its feature, a :class:`GalleryIndex` that can be saved and reused;
    - :meth:`search`: the gallery detections scoring at least
      ``det_thresh``, ranked by cosine similarity to the query.

    Args:
        config (str or Config): Config file or object (not modified).
        checkpoint (str, optional): Weights; None keeps the model as
            initialised (for tests).
        device (str): ``'cpu'``, ``'cuda'``, ``'cuda:1'``... Defaults to
            ``'cpu'``.
        det_thresh (float): Default minimum detection score of the hits (the
            evaluation protocol's 0.5). Defaults to 0.5.
        cfg_options (dict, optional): Config overrides (``key=value``, as
            ``--cfg-options``), e.g. ``{'model.test_cfg.reid_mode':
            'scene'}``.
        trust_checkpoint (bool): The caller names the checkpoint file, as
            with mmps's tools: let mmengine training checkpoints (which hold
            more than tensors) be unpickled while it loads (see
            :mod:`mmps.engine.checkpoint`). False loads weights-only files
            only. Defaults to True.
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 det_thresh: float = 0.5,
                 cfg_options: Optional[dict] = None,
                 trust_checkpoint: bool = True) -> None:
        register_all_modules(init_default_scope=False)
        if isinstance(config, str):
            self.config_name = config
            cfg = Config.fromfile(config)
        elif isinstance(config, Config):
            self.config_name = config.filename or '<Config>'
            cfg = copy.deepcopy(config)
        else:
            raise TypeError('config must be a file path or a Config, got '
                            f'{type(config).__name__}')
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        init_default_scope(cfg.get('default_scope', 'mmps'))
        self.cfg = cfg
        self.checkpoint = checkpoint
        self.det_thresh = float(det_thresh)
        self.model = self._build_model(cfg, checkpoint, trust_checkpoint)
        self.model.to(device).eval()
        self.device = device
        self.loader, self.pipeline = self._inference_pipeline(cfg)
        self._model_id: Optional[str] = None

    # ------------------------------------------------------------------ #
    # set-up
    # ------------------------------------------------------------------ #
    @staticmethod
    def _build_model(cfg: Config, checkpoint: Optional[str],
                     trust: bool) -> torch.nn.Module:
        model_cfg = copy.deepcopy(cfg.model)
        model = MODELS.build(model_cfg)
        if checkpoint is None:
            # as initialised; without the per-parameter log of mmengine
            logger = MMLogger.get_current_instance()
            level = logger.level
            logger.setLevel(logging.WARNING)
            try:
                model.init_weights()
            finally:
                logger.setLevel(level)
            return model
        with trusted_local_checkpoints() if trust else nullcontext():
            load_checkpoint(model, checkpoint, map_location='cpu')
        return model

    @staticmethod
    def _inference_pipeline(cfg: Config) -> tuple:
        """The test pipeline split into its image loader (one that also
        takes arrays) and the rest."""
        try:
            pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
        except AttributeError as e:
            raise ValueError('the config has no test_dataloader.dataset.'
                             'pipeline to prepare images with') from e
        if not pipeline or str(pipeline[0]['type']).split('.')[-1] != \
                'LoadImageFromFile':
            raise ValueError('the test pipeline must start with '
                             'LoadImageFromFile')
        loader = dict(pipeline[0], type='mmdet.InferencerLoader')
        return Compose([loader]), Compose(pipeline[1:])

    @property
    def model_id(self) -> str:
        """Fingerprint of the model config, the test pipeline and the weights.

        Gallery indices carry it: features of different models (or of the
        same weights with other test settings) cannot be compared.
        """
        if self._model_id is None:
            h = hashlib.sha256()
            text = json.dumps(
                dict(
                    model=self.cfg.model.to_dict(),
                    pipeline=self.cfg.test_dataloader.dataset.pipeline),
                sort_keys=True,
                default=str)
            h.update(text.encode())
            for name, value in sorted(self.model.state_dict().items()):
                h.update(name.encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
            self._model_id = h.hexdigest()
        return self._model_id

    def describe(self) -> str:
        """``config <path>, checkpoint <path>`` of this searcher."""
        return f'config {self.config_name}, checkpoint {self.checkpoint}'

    # ------------------------------------------------------------------ #
    # inference
    # ------------------------------------------------------------------ #
    def _load(self, img: ImageType) -> dict:
        """Load an image (file or array) as the pipeline's first step."""
        if isinstance(img, np.ndarray):
            if img.ndim != 3 or img.shape[2] != 3:
                raise ValueError('an image array must be H x W x 3 (BGR), '
                                 f'got shape {img.shape}')
            return self.loader(dict(img=img, img_name='<array>'))
        if not isinstance(img, str):
            raise TypeError('an image is a file path or an H x W x 3 BGR '
                            f'array, got {type(img).__name__}')
        _check_image_file(img)
        try:
            results = self.loader(
                dict(img_path=img, img_name=osp.basename(img)))
        except Exception as e:
            raise ValueError(f'cannot read the image {img}: {e}') from e
        if results is None or results.get('img') is None:
            raise ValueError(f'cannot read the image {img}')
        return results

    def _prepare(self, results: dict, info: dict) -> dict:
        """A loaded image with its entry fields through the pipeline."""
        results.update(info)
        packed = self.pipeline(results)
        if packed is None:
            raise RuntimeError('the test pipeline dropped the image '
                               f'{results.get("img_path")}')
        return packed

    @torch.no_grad()
    def _infer(self, packed: Sequence[dict]) -> list:
        return self.model.test_step(pseudo_collate(list(packed)))

    @staticmethod
    def _check_box(box: Sequence[float], shape: Sequence[int],
                   name: str) -> List[float]:
        """A valid x1, y1, x2, y2 box inside an (h, w) image.

        A box sticking out by at most one pixel (annotation rounding) is
        clipped to the image.
        """
        arr = np.asarray(box, np.float64).reshape(-1)
        if arr.size != 4 or not np.isfinite(arr).all():
            raise ValueError(f'the query box must be 4 finite numbers '
                             f'x1 y1 x2 y2, got {box!r}')
        h, w = int(shape[0]), int(shape[1])
        x1, y1, x2, y2 = arr.tolist()
        if x2 <= x1 or y2 <= y1:
            raise ValueError(
                f'the query box {[x1, y1, x2, y2]} (x1 y1 x2 y2) has zero or '
                f'negative size (image {name}, {w}x{h})')
        if x1 < -1 or y1 < -1 or x2 > w + 1 or y2 > h + 1:
            raise ValueError(
                f'the query box {[x1, y1, x2, y2]} (x1 y1 x2 y2) is not '
                f'inside the image {name} of size {w}x{h} (width x height)')
        clipped = [max(x1, 0.), max(y1, 0.), min(x2, w), min(y2, h)]
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            raise ValueError(
                f'the query box {[x1, y1, x2, y2]} has no area inside the '
                f'image {name} of size {w}x{h}')
        return clipped

    def embed_query(self, img: ImageType, box: Sequence[float]) -> Tensor:
        """The re-id feature of a query person.

        Args:
            img (str or np.ndarray): Image file, or an H x W x 3 BGR array.
            box (Sequence[float]): ``x1, y1, x2, y2`` in the image's pixels.

        Returns:
            Tensor: (D, ) feature (CPU): unit-norm, or of norm <= 1 with
            the reference's un-normalised fused features (the default).

        Raises:
            FileNotFoundError: The image file is missing.
            ValueError: The box is empty or not inside the image.
        """
        results = self._load(img)
        name = img if isinstance(img, str) else 'given as an array'
        box = self._check_box(box, results['ori_shape'], name)
        # the box travels as the query's only instance (original pixels)
        packed = self._prepare(
            results,
            dict(
                img_id=0,
                cam_id=0,
                is_query=True,
                query_id=0,
                query_img_index=-1,
                gallery_img_ids=None,
                instances=[
                    dict(
                        bbox=box,
                        bbox_label=0,
                        ignore_flag=0,
                        instance_id=-1,
                        person_id=-1)
                ]))
        result = self._infer([packed])[0]
        return result.pred_instances.feats[0].detach().float().cpu()

    def build_index(self,
                    gallery: GalleryType,
                    batch_size: int = 1,
                    progress: bool = True) -> GalleryIndex:
        """Detect every person of a gallery and keep their features.

        Args:
            gallery (str or Sequence[str]): Folder, glob pattern or list of
                image files (see :func:`list_gallery_images`).
            batch_size (int): Images per forward pass. Defaults to 1.
            progress (bool): Show a progress bar. Defaults to True.

        Returns:
            GalleryIndex: All detections (every score), with
            :attr:`model_id`; ``save`` it to reuse it.
        """
        paths = list_gallery_images(gallery)
        bar = ProgressBar(len(paths)) if progress else None
        det_img, boxes, scores, feats = [], [], [], []
        for start in range(0, len(paths), max(1, int(batch_size))):
            chunk = paths[start:start + max(1, int(batch_size))]
            packed = [
                self._prepare(
                    self._load(p),
                    dict(img_id=start + j, cam_id=0, is_query=False,
                         instances=[])) for j, p in enumerate(chunk)
            ]
            for j, res in enumerate(self._infer(packed)):
                pred = res.pred_instances
                det_img.append(np.full(len(pred), start + j, np.int64))
                boxes.append(pred.bboxes.detach().float().cpu().numpy())
                scores.append(pred.scores.detach().float().cpu().numpy())
                feats.append(pred.feats.detach().float().cpu().numpy())
                if bar is not None:
                    bar.update()
        if bar is not None:
            print()
        dim = self.model.roi_head.embed_dim
        return GalleryIndex(
            img_paths=[osp.abspath(p) if '://' not in p else p
                       for p in paths],
            det_img=np.concatenate(det_img),
            boxes=np.concatenate(boxes).reshape(-1, 4),
            scores=np.concatenate(scores),
            feats=np.concatenate(feats).reshape(-1, dim),
            model_id=self.model_id,
            meta=dict(config=self.config_name, checkpoint=self.checkpoint))

    def load_index(self, path: str) -> GalleryIndex:
        """Read a saved index and check that this model built it.

        Args:
            path (str): ``.npz`` file of :meth:`GalleryIndex.save`.

        Returns:
            GalleryIndex: The index.

        Raises:
            GalleryIndexError: Not an index, or built by another model.
        """
        index = GalleryIndex.load(path)
        index.check_model(self.model_id, self.describe())
        return index

    def search(self,
               gallery: Union[GalleryIndex, GalleryType],
               query_feats: Union[Tensor, np.ndarray],
               topk: Optional[int] = 10,
               det_thresh: Optional[float] = None,
               exclude_imgs: Optional[Sequence[str]] = None
               ) -> Union[List[SearchHit], List[List[SearchHit]]]:
        """Rank the gallery's detections for one or more queries.

        Args:
            gallery (GalleryIndex or str or Sequence[str]): An index of this
                model, or gallery images (indexed on the fly).
            query_feats (Tensor or np.ndarray): (D, ) or (Q, D), from
                :meth:`embed_query`.
            topk (int, optional): Hits per query (None: all).
                Defaults to 10.
            det_thresh (float, optional): Minimum detection score; None uses
                the searcher's (0.5 by default).
            exclude_imgs (Sequence[str], optional): Gallery images to skip,
                e.g. the query's own image.

        Returns:
            list[SearchHit] for one query, list[list[SearchHit]] for (Q, D):
            ``rank``, ``img_path``, ``img_index``, ``box``, ``score``,
            ``similarity``, best first.
        """
        if isinstance(gallery, GalleryIndex):
            gallery.check_model(self.model_id, self.describe())
            index = gallery
        else:
            index = self.build_index(gallery)
        return index.search(
            query_feats,
            topk=topk,
            det_thresh=self.det_thresh if det_thresh is None else det_thresh,
            exclude_imgs=exclude_imgs)

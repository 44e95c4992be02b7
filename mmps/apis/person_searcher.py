# Copyright (c) OpenMMLab. All rights reserved.
"""Person search on one's own images: embed a query, index a gallery, rank.

Example::

    from mmps.apis import PersonSearcher

    searcher = PersonSearcher('configs/dicl_synthetic_prw.py', 'epoch_50.pth')
    query = searcher.embed_query('query.jpg', (381, 88, 400, 135))
    index = searcher.build_index('gallery/*.jpg')   # once; index.save(...)
    for hit in searcher.search(index, query, topk=5):
        print(hit.rank, hit.img_path, hit.box, hit.score, hit.similarity)

    # as any mmengine inferencer: detections with their features
    results = searcher('gallery/', batch_size=4)
"""
import copy
import glob
import hashlib
import json
import logging
import os
import os.path as osp
from contextlib import nullcontext
from typing import Callable, Iterable, List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose, pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.visualization import Visualizer
from torch import Tensor

from mmps.engine import (register_checkpoint_loader,
                         trusted_local_checkpoints)
from mmps.registry import DATASETS
from mmps.structures import GalleryIndex, SearchHit
from mmps.utils import register_all_modules

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


def _image_name(img: ImageType) -> str:
    return img if isinstance(img, str) else 'given as an array'


class PersonSearcher(BaseInferencer):
    """Person search inference with a trained model, on any images.

    An mmengine :class:`~mmengine.infer.BaseInferencer`: the library builds
    the model and loads its weights, builds the config's test pipeline
    (``test_dataloader.dataset.pipeline``, its ``LoadImageFromFile`` swapped
    for mmdet's ``InferencerLoader``, which also takes arrays), lists the
    inputs, batches them and runs ``model.test_step``. Calling the searcher
    on gallery images gives every detection with its re-id feature; with
    ``query_boxes`` (one ``x1, y1, x2, y2`` box per image) it gives the
    query features instead. The person search API on top:

    - :meth:`embed_query`: the feature of a person box (the query path: the
      box is the query sample's only instance, in original pixels, as a
      dataset entry holds it);
    - :meth:`build_index`: every detection of a set of gallery images with
      its feature, a :class:`~mmps.structures.GalleryIndex` that can be saved
      and reused;
    - :meth:`search`: the gallery detections scoring at least
      ``det_thresh``, ranked by cosine similarity to the query.

    Nothing is downloaded: the config must be a file or a Config (no
    model-zoo names) and the checkpoint a local file.

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
        show_progress (bool): Show a progress bar in :meth:`__call__`.
            Defaults to True.
    """

    preprocess_kwargs: set = {'query_boxes'}
    forward_kwargs: set = set()
    visualize_kwargs: set = {
        'return_vis', 'show', 'wait_time', 'pred_score_thr', 'img_out_dir'
    }
    postprocess_kwargs: set = set()

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 det_thresh: float = 0.5,
                 cfg_options: Optional[dict] = None,
                 trust_checkpoint: bool = True,
                 show_progress: bool = True) -> None:
        register_all_modules(init_default_scope=False)
        if isinstance(config, str):
            if not osp.isfile(config):
                raise FileNotFoundError(f'config file not found: {config}')
            self.config_name = config
            cfg = Config.fromfile(config)
        elif isinstance(config, Config):
            self.config_name = config.filename or '<Config>'
            cfg = copy.deepcopy(config)
        else:
            raise TypeError('config must be a file path or a Config, got '
                            f'{type(config).__name__}')
        if checkpoint is not None and ('://' in checkpoint
                                       or not osp.isfile(checkpoint)):
            raise FileNotFoundError(
                f'checkpoint file not found: {checkpoint} (PersonSearcher '
                'loads local files only and downloads nothing)')
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        scope = cfg.get('default_scope', 'mmps')
        init_default_scope(scope)
        self.checkpoint = checkpoint
        self.det_thresh = float(det_thresh)
        self.trust_checkpoint = trust_checkpoint
        self.device = device
        self._model_id: Optional[str] = None
        super().__init__(
            model=cfg,
            weights=checkpoint,
            device=device,
            scope=scope,
            show_progress=show_progress)

    # ------------------------------------------------------------------ #
    # set-up (BaseInferencer)
    # ------------------------------------------------------------------ #
    def _init_model(self, cfg: Config, weights: Optional[str],
                    device: str) -> nn.Module:
        """Build the model and load the weights (trusted if asked).

        The weights load through mmps's local loader
        (:func:`~mmps.engine.register_checkpoint_loader`: safe
        ``weights_only`` loading first). The model is built from a copy:
        mmdet's detectors write their ``train_cfg`` / ``test_cfg`` into the
        head configs they are given, and :attr:`model_id` fingerprints the
        config as written.
        """
        register_checkpoint_loader()
        trusted = trusted_local_checkpoints() if self.trust_checkpoint \
            else nullcontext()
        with trusted:
            return super()._init_model(copy.deepcopy(cfg), weights, device)

    def _init_collate(self, cfg: Config) -> Callable:
        """The test dataloader's ``collate_fn``, ``pseudo_collate`` if none
        (mmps registers no functions of its own to look it up in)."""
        if cfg.test_dataloader.get('collate_fn') is None:
            return pseudo_collate
        return super()._init_collate(cfg)

    def _load_weights_to_model(self, model: nn.Module,
                               checkpoint: Optional[dict],
                               cfg: Optional[ConfigDict]) -> None:
        """Load the checkpoint, or initialise the model (quietly) without."""
        if checkpoint is not None:
            super()._load_weights_to_model(model, checkpoint, cfg)
            return
        # as initialised; without the per-parameter log of mmengine
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)

    def _init_pipeline(self, cfg: Config) -> Compose:
        """The test pipeline, its first step loading files or arrays."""
        try:
            pipeline_cfg = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
        except AttributeError as e:
            raise ValueError('the config has no test_dataloader.dataset.'
                             'pipeline to prepare images with') from e
        if not pipeline_cfg or str(pipeline_cfg[0]['type']).split('.')[-1] \
                != 'LoadImageFromFile':
            raise ValueError('the test pipeline must start with '
                             'LoadImageFromFile')
        pipeline_cfg[0] = dict(pipeline_cfg[0], type='mmdet.InferencerLoader')
        return Compose(pipeline_cfg)

    def _init_visualizer(self, cfg: Config) -> Optional[Visualizer]:
        """The config's visualizer (drawing only: no storage backends), with
        the test dataset's class names."""
        if 'visualizer' not in cfg:
            return None
        visualizer = super()._init_visualizer(
            Config(dict(visualizer=dict(cfg.visualizer, vis_backends=None))))
        if visualizer is not None:
            dataset = DATASETS.get(cfg.test_dataloader.dataset.type)
            visualizer.dataset_meta = copy.deepcopy(
                getattr(dataset, 'METAINFO', dict(classes=('person', ))))
        return visualizer

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
    # inference steps (BaseInferencer)
    # ------------------------------------------------------------------ #
    def _inputs_to_list(self, inputs: Union[ImageType,
                                            Sequence[ImageType]]) -> list:
        """A folder or glob pattern as its sorted images
        (:func:`list_gallery_images`); anything else as the library lists
        it."""
        if isinstance(inputs, str):
            return list_gallery_images(inputs)
        return super()._inputs_to_list(inputs)

    def preprocess(self,
                   inputs: list,
                   batch_size: int = 1,
                   query_boxes: Optional[Sequence[Sequence[float]]] = None):
        """Checked images (and query boxes) as the library batches them.

        Args:
            inputs (list): Image files or H x W x 3 BGR arrays.
            batch_size (int): Images per forward pass. Defaults to 1.
            query_boxes (Sequence, optional): One ``x1, y1, x2, y2`` box in
                original pixels per image: the images are queries and the
                predictions their features. None: gallery images (every
                detection with its feature).

        Yields:
            dict: Batches for ``model.test_step``.
        """
        if query_boxes is not None and len(query_boxes) != len(inputs):
            raise ValueError(f'{len(query_boxes)} query boxes for '
                             f'{len(inputs)} images: give one box per image')
        entries = (
            self._entry(i, img, None if query_boxes is None else
                        query_boxes[i]) for i, img in enumerate(inputs))
        chunks = self._get_chunk_data(map(self._prepare, entries), batch_size)
        yield from map(self.collate_fn, chunks)

    def visualize(self,
                  inputs: list,
                  preds: list,
                  return_vis: bool = False,
                  show: bool = False,
                  wait_time: float = 0,
                  pred_score_thr: Optional[float] = None,
                  img_out_dir: str = '') -> Optional[List[np.ndarray]]:
        """Draw the detections (or query boxes) with the config's visualizer.

        Args:
            inputs (list): The images, as listed by :meth:`_inputs_to_list`.
            preds (list[DetDataSample]): The predictions.
            return_vis (bool): Return the drawn images. Defaults to False.
            show (bool): Show them in a window. Defaults to False.
            wait_time (float): Seconds each one is shown. Defaults to 0.
            pred_score_thr (float, optional): Minimum score drawn; None: the
                searcher's ``det_thresh``.
            img_out_dir (str): Write them to ``img_out_dir/vis/``; '' does
                not. Defaults to ''.

        Returns:
            list[np.ndarray] or None: The RGB images, if any was asked for.
        """
        if not (return_vis or show or img_out_dir):
            return None
        if self.visualizer is None:
            raise ValueError('the config has no visualizer to draw with')
        thr = self.det_thresh if pred_score_thr is None else pred_score_thr
        drawn = []
        for i, (img, pred) in enumerate(zip(inputs, preds)):
            if isinstance(img, str):
                name = osp.basename(img)
                img = mmcv.imread(img, channel_order='rgb')
            else:
                name = f'{i:08d}.jpg'
                img = mmcv.bgr2rgb(img)
            self.visualizer.add_datasample(
                name,
                img,
                pred,
                draw_gt=False,
                show=show,
                wait_time=wait_time,
                pred_score_thr=thr,
                out_file=osp.join(img_out_dir, 'vis', name)
                if img_out_dir else None)
            drawn.append(self.visualizer.get_image())
        return drawn if return_vis else None

    def postprocess(self,
                    preds: list,
                    visualization: Optional[List[np.ndarray]],
                    return_datasamples: bool = False) -> dict:
        """``predictions`` (data samples, or per image ``bboxes``,
        ``scores``, ``feats`` lists) and ``visualization``."""
        if not return_datasamples:
            preds = [self._pred_to_dict(p) for p in preds]
        return dict(predictions=preds, visualization=visualization)

    @staticmethod
    def _pred_to_dict(pred) -> dict:
        inst = pred.pred_instances
        return dict(
            bboxes=inst.bboxes.detach().float().cpu().tolist(),
            scores=inst.scores.detach().float().cpu().tolist(),
            feats=inst.feats.detach().float().cpu().tolist())

    # ------------------------------------------------------------------ #
    # entries
    # ------------------------------------------------------------------ #
    def _load(self, img: str) -> dict:
        """Read an image file with the pipeline's first step."""
        try:
            results = self.pipeline.transforms[0](
                dict(img_path=img, img_name=osp.basename(img)))
        except Exception as e:
            raise ValueError(f'cannot read the image {img}: {e}') from e
        if results is None or results.get('img') is None:
            raise ValueError(f'cannot read the image {img}')
        return results

    def _entry(self,
               idx: int,
               img: ImageType,
               query_box: Optional[Sequence[float]] = None) -> dict:
        """One input as a test-set entry: a gallery image without
        annotations, or a query whose box is its only instance (original
        pixels, as a dataset entry holds it)."""
        if isinstance(img, np.ndarray):
            if img.ndim != 3 or img.shape[2] != 3:
                raise ValueError('an image array must be H x W x 3 (BGR), '
                                 f'got shape {img.shape}')
            entry = dict(img=img, img_name='<array>')
        elif isinstance(img, str):
            _check_image_file(img)
            entry = dict(img_path=img, img_name=osp.basename(img))
        else:
            raise TypeError('an image is a file path or an H x W x 3 BGR '
                            f'array, got {type(img).__name__}')
        if query_box is None:
            entry.update(img_id=idx, cam_id=0, is_query=False, instances=[])
            return entry
        # the box is checked against the image's size before the pipeline
        shape = img.shape[:2] if isinstance(img, np.ndarray) else \
            self._load(img)['ori_shape']
        box = self._check_box(query_box, shape, _image_name(img))
        entry.update(
            img_id=idx,
            cam_id=0,
            is_query=True,
            query_id=idx,
            query_img_index=-1,
            gallery_img_ids=None,
            instances=[
                dict(
                    bbox=box,
                    bbox_label=0,
                    ignore_flag=0,
                    instance_id=-1,
                    person_id=-1)
            ])
        return entry

    def _prepare(self, entry: dict) -> dict:
        """An entry through the test pipeline; errors name the image."""
        name = entry.get('img_path') or 'given as an array'
        try:
            packed = self.pipeline(entry)
        except Exception as e:
            raise ValueError(f'cannot prepare the image {name} with the '
                             f'test pipeline: {e}') from e
        if packed is None:
            raise RuntimeError(f'the test pipeline dropped the image {name}')
        return packed

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

    # ------------------------------------------------------------------ #
    # person search API
    # ------------------------------------------------------------------ #
    def _predict(self, inputs: Iterable[ImageType], progress: bool,
                 **kwargs) -> list:
        """The data samples of :meth:`__call__`, progress bar on or off."""
        show_progress, self.show_progress = self.show_progress, progress
        try:
            return self(
                list(inputs), return_datasamples=True, **kwargs)['predictions']
        finally:
            self.show_progress = show_progress

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
        pred = self._predict([img], progress=False, query_boxes=[box])[0]
        return pred.pred_instances.feats[0].detach().float().cpu()

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
        preds = self._predict(
            paths, progress=progress, batch_size=max(1, int(batch_size)))
        det_img, boxes, scores, feats = [], [], [], []
        for i, pred in enumerate(preds):
            inst = pred.pred_instances
            det_img.append(np.full(len(inst), i, np.int64))
            boxes.append(inst.bboxes.detach().float().cpu().numpy())
            scores.append(inst.scores.detach().float().cpu().numpy())
            feats.append(inst.feats.detach().float().cpu().numpy())
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

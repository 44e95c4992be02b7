# Copyright (c) OpenMMLab. All rights reserved.
import copy
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.detectors import TwoStageDetector
from mmdet.structures import DetDataSample, SampleList
from mmdet.structures.bbox import get_box_tensor, scale_boxes
from mmdet.utils import ConfigType, InstanceList, OptConfigType, \
    OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from mmps.registry import MODELS

#: ``test_cfg.reid_mode`` values: the feature of a gallery detection.
REID_MODES = ('fused', 'scene', 'fused_all_proposals')
#: ``test_cfg.crop_box`` values: the box whose crop gives a detection's ``g``.
CROP_BOXES = ('proposal', 'detection')


@MODELS.register_module()
class PersonSearchDetector(TwoStageDetector):
    """One-step person search: a Faster R-CNN whose detections carry re-id
    features, with an instance (crop) branch sharing every weight.

    Two branches, one set of weights:

    - *scene*: backbone + neck on the image -> RPN -> RoI head; the re-id
      embedding ``p`` of a RoI is ``reid_head(shared_head(RoI feature))``
      (:meth:`PersonSearchRoIHead.embed_rois`);
    - *instance*: a box is cropped from the input tensor and resized to
      ``crop_size`` (224x96, :meth:`crop_instances`), and the crop goes
      through the same backbone + neck (a 14x6 map at stride 16, the RoI
      size), shared head and re-id head (:meth:`embed_crops`) -> ``g``.

    Inference (:meth:`predict`), per sample by ``metainfo['is_query']``:

    - gallery image: detections (RPN -> RoI head, ``test_cfg.rcnn``) in
      original pixels with ``feats`` chosen by ``test_cfg.reid_mode``:

      - ``'fused'`` (default): ``(p + g) / 2`` with ``p`` the scene
        embedding of the detection's *proposal* and ``g`` the crop
        embedding of that proposal's box (``test_cfg.crop_box='proposal'``,
        the reference's) or of the detection's final box (``'detection'``),
        computed for the kept detections only; not re-normalised
        (``test_cfg.normalize_fused=False``, the reference's: the norm
        ``cos(angle(p, g) / 2)`` weights the dot product) or L2-normalised
        (True);
      - ``'scene'``: ``p`` alone (no crop pass);
      - ``'fused_all_proposals'``: the reference order, ``p`` and ``g`` for
        every proposal and then the selection; same features as
        ``'fused'`` at a much higher cost (for benchmarks and tests).

    - query: its one GT box (``gt_instances.bboxes[0]``, input pixels:
      the annotations are loaded before ``Resize``, as for every box) is the
      RoI, without regression or NMS; ``feats`` (1, D) follows the
      same rule (``p`` from the box's RoI feature, ``g`` from its crop).
      ``pred_instances`` is the query box, score 1, label 0 and ``feats``.
      (The reference's PRW protocol takes the query feature from the
      detections of the query frame instead: an evaluation protocol, see
      ``PersonSearchMetric(protocols=...)``.)

    Training (:meth:`loss`) reads as the method's steps: features, RPN
    losses and proposals, instance-branch embeddings of the GT boxes
    (:meth:`embed_gt_instances`, none here), RoI head losses (box losses and
    its re-id hook).

    Args:
        backbone (dict): Backbone config.
        neck (dict, optional): Neck config (one output level).
        rpn_head (dict, optional): RPN head config.
        roi_head (dict, optional): :class:`PersonSearchRoIHead` config.
        train_cfg (dict, optional): ``rpn``, ``rpn_proposal``, ``rcnn``.
        test_cfg (dict, optional): ``rpn``, ``rcnn`` and ``reid_mode``
            (default ``'fused'``), ``crop_box`` (default ``'proposal'``),
            ``normalize_fused`` (default False).
        data_preprocessor (dict, optional): Data preprocessor config.
        crop_size (tuple[int]): (h, w) of the instance crops; with the
            stride-16 neck it must give the RoI size. Defaults to (224, 96).
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType = None,
                 rpn_head: OptConfigType = None,
                 roi_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 crop_size: Sequence[int] = (224, 96),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.crop_size = tuple(crop_size)
        self._test_modes()  # fail early on a bad test_cfg

    def _test_modes(self) -> dict:
        """``reid_mode``, ``crop_box``, ``normalize_fused`` of ``test_cfg``,
        validated (the reference's by default)."""
        cfg = self.test_cfg or {}
        modes = dict(
            reid_mode=cfg.get('reid_mode', 'fused'),
            crop_box=cfg.get('crop_box', 'proposal'),
            normalize_fused=cfg.get('normalize_fused', False))
        if 'query_mode' in cfg:
            raise ValueError(
                'test_cfg.query_mode is gone: the reference\'s PRW protocol '
                '(query = best-IoU detection of its frame, similarities x '
                "score) is an evaluation protocol: PersonSearchMetric("
                "protocols=('gt_box', 'best_iou_det'))")
        if modes['reid_mode'] not in REID_MODES:
            raise ValueError(f'test_cfg.reid_mode must be one of {REID_MODES}'
                             f", got {modes['reid_mode']!r}")
        if modes['crop_box'] not in CROP_BOXES:
            raise ValueError(f'test_cfg.crop_box must be one of {CROP_BOXES}'
                             f", got {modes['crop_box']!r}")
        if not isinstance(modes['normalize_fused'], bool):
            raise ValueError('test_cfg.normalize_fused must be a bool, got '
                             f"{modes['normalize_fused']!r}")
        return modes

    # ------------------------------------------------------------------ #
    # instance branch
    # ------------------------------------------------------------------ #
    def crop_instances(self,
                       batch_inputs: Tensor,
                       img_idx: Union[int, Tensor],
                       boxes: Tensor,
                       size: Optional[Sequence[int]] = None) -> Tensor:
        """Crop boxes from the (normalised) input tensor and resize them.

        The same rule as the training views (:class:`InstanceViews`): the
        box is widened to whole pixels (floor / ceil, clipped to the
        tensor) and resized with an antialiased bilinear filter, so that
        the instance branch sees crops made alike in training and test.

        Args:
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            img_idx (int or Tensor): The image of every box: one index, or
                (n, ) indices.
            boxes (Tensor): (n, 4) ``x1, y1, x2, y2`` in input-tensor pixels
                (continuous coordinates).
            size (Sequence[int], optional): (h, w) of the crops; None uses
                ``crop_size``.

        Returns:
            Tensor: (n, C, h, w) crops.
        """
        size = tuple(self.crop_size if size is None else size)
        boxes = get_box_tensor(boxes).reshape(-1, 4)
        if boxes.size(0) == 0:
            return batch_inputs.new_zeros((0, batch_inputs.size(1), *size))
        height, width = batch_inputs.shape[-2:]
        if isinstance(img_idx, Tensor):
            inds = img_idx.reshape(-1).long().tolist()
        else:
            inds = [int(img_idx)] * boxes.size(0)
        x1y1 = boxes[:, :2].floor().clamp(min=0)
        x1y1 = torch.minimum(x1y1, boxes.new_tensor([width - 1, height - 1]))
        x2y2 = torch.maximum(boxes[:, 2:].ceil(), x1y1 + 1)
        x2y2 = torch.minimum(x2y2, boxes.new_tensor([width, height]))
        crops = [
            F.interpolate(
                batch_inputs[i:i + 1, :, y1:y2, x1:x2], size,
                mode='bilinear', align_corners=False, antialias=True)
            for i, (x1, y1), (x2, y2) in zip(
                inds, x1y1.long().tolist(), x2y2.long().tolist())
        ]
        return torch.cat(crops)

    def embed_crops(self, crops: Tensor) -> Tensor:
        """Instance-branch embeddings of crops.

        backbone + neck (a RoI-sized map) -> shared head -> re-id head.

        Args:
            crops (Tensor): (n, C, 224, 96) crops of the input tensor.

        Returns:
            Tensor: (n, D) unit-norm embeddings.
        """
        if crops.size(0) == 0:
            return crops.new_zeros((0, self.roi_head.embed_dim))
        feats = self.extract_feat(crops)[0]
        roi_size = tuple(self.roi_head.reid_head.roi_size)
        if tuple(feats.shape[-2:]) != roi_size:
            raise ValueError(
                f'crops of size {tuple(crops.shape[-2:])} give a '
                f'{tuple(feats.shape[-2:])} feature map, not the RoI size '
                f'{roi_size}: set crop_size to RoI size x feature stride')
        return self.roi_head.embed_roi_feats(feats)

    def embed_boxes(self, batch_inputs: Tensor, img_idx: Union[int, Tensor],
                    boxes: Tensor) -> Tensor:
        """Crop embeddings ``g`` of boxes (input-tensor pixels).

        Args:
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            img_idx (int or Tensor): Image index (or (n, ) indices).
            boxes (Tensor): (n, 4) boxes in input-tensor pixels.

        Returns:
            Tensor: (n, D) unit-norm embeddings.
        """
        return self.embed_crops(
            self.crop_instances(batch_inputs, img_idx, boxes))

    #: ``instance_views`` of :meth:`embed_gt_boxes`: where ``g`` comes from.
    INSTANCE_VIEWS = ('packed', 'cropped', 'none')

    def embed_gt_boxes(self,
                       batch_inputs: Tensor,
                       batch_data_samples: SampleList,
                       x: Optional[Tuple[Tensor]] = None,
                       boxes: Optional[Sequence[Tensor]] = None,
                       instance_views: str = 'packed',
                       normalize: bool = True) -> Tensor:
        """Re-id features of given boxes: the person search feature of a GT.

        ``p`` is the scene embedding of each box as a RoI of ``x``; ``g`` the
        instance embedding of the same box, by ``instance_views``:

        - ``'packed'``: the views the pipeline packed with the GT
          (``gt_instances.crops``, :meth:`embed_gt_instances`); ``p`` alone
          when the batch has none. The feature of a GT box in training (the
          memory initialisation uses it);
        - ``'cropped'``: crops of the boxes cut from ``batch_inputs``
          (:meth:`embed_boxes`), as for detections at test time (query
          prediction);
        - ``'none'``: ``p`` alone (``test_cfg.reid_mode='scene'``).

        The feature is ``fuse_embeddings(p, g, normalize)``, or ``p``.

        Args:
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            batch_data_samples (list[DetDataSample]): The batch.
            x (tuple[Tensor], optional): Its feature maps (computed if None).
            boxes (Sequence[Tensor], optional): Per sample, (n_i, 4) boxes in
                input-tensor pixels. Defaults to ``gt_instances.bboxes``.
            instance_views (str): One of :attr:`INSTANCE_VIEWS`.
                Defaults to ``'packed'``.
            normalize (bool): L2-normalise the fused feature.
                Defaults to True.

        Returns:
            Tensor: (sum n_i, D) features, sample by sample in box order.
        """
        if instance_views not in self.INSTANCE_VIEWS:
            raise ValueError(f'instance_views must be one of '
                             f'{self.INSTANCE_VIEWS}, got {instance_views!r}')
        if boxes is None:
            boxes = [
                get_box_tensor(s.gt_instances.bboxes)
                for s in batch_data_samples
            ]
        boxes = [b.to(batch_inputs).reshape(-1, 4) for b in boxes]
        img_inds = torch.cat([
            b.new_full((len(b), ), i) for i, b in enumerate(boxes)
        ]) if boxes else batch_inputs.new_zeros(0)
        rois = torch.cat([img_inds[:, None], torch.cat(boxes)], dim=1) \
            if boxes else batch_inputs.new_zeros((0, 5))
        if rois.size(0) == 0:
            return batch_inputs.new_zeros((0, self.roi_head.embed_dim))
        if x is None:
            x = self.extract_feat(batch_inputs)
        p = self.roi_head.embed_rois(x, rois)
        if instance_views == 'packed':
            g = self.embed_gt_instances(batch_inputs, batch_data_samples)
        elif instance_views == 'cropped':
            g = self.embed_boxes(batch_inputs, img_inds, rois[:, 1:])
        else:
            g = None
        if g is None:
            return p
        return self.roi_head.fuse_embeddings(p, g, normalize=normalize)

    # ------------------------------------------------------------------ #
    # training
    # ------------------------------------------------------------------ #
    def rpn_loss_and_predict(
            self, x: Tuple[Tensor],
            batch_data_samples: SampleList) -> Tuple[dict, InstanceList]:
        """RPN losses and training proposals (as ``TwoStageDetector``).

        Args:
            x (tuple[Tensor]): Feature maps.
            batch_data_samples (list[DetDataSample]): The batch.

        Returns:
            tuple[dict, list[InstanceData]]: Losses (``loss_rpn_cls``,
            ``loss_rpn_bbox``) and proposals per image.
        """
        if not self.with_rpn:
            return dict(), [s.proposals for s in batch_data_samples]
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(batch_data_samples)
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = \
                torch.zeros_like(data_sample.gt_instances.labels)
        rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
            x, rpn_data_samples, proposal_cfg=proposal_cfg)
        for key in list(rpn_losses):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        return rpn_losses, rpn_results_list

    def embed_gt_instances(self, batch_inputs: Tensor,
                           batch_data_samples: SampleList) -> Optional[Tensor]:
        """Instance-branch embeddings of the GT boxes for the re-id losses.

        None here (a detection-only objective); a method with a Siamese
        instance branch returns the (G, D) embeddings of the batch's GT
        crops, image by image, which reach
        :meth:`PersonSearchRoIHead.loss_reid`.

        Args:
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            batch_data_samples (list[DetDataSample]): The batch.

        Returns:
            Tensor or None: (G, D) embeddings.
        """
        return None

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """Losses of a training batch.

        Args:
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``
                (boxes in input-tensor pixels; may be empty).

        Returns:
            dict[str, Tensor]: RPN and RoI head losses.
        """
        x = self.extract_feat(batch_inputs)
        losses, rpn_results_list = self.rpn_loss_and_predict(
            x, batch_data_samples)
        gt_embeds = self.embed_gt_instances(batch_inputs, batch_data_samples)
        losses.update(
            self.roi_head.loss(
                x, rpn_results_list, batch_data_samples, gt_embeds=gt_embeds))
        return losses

    # ------------------------------------------------------------------ #
    # test
    # ------------------------------------------------------------------ #
    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detections with features (gallery) or the query feature.

        Args:
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            batch_data_samples (list[DetDataSample]): Gallery and/or query
                samples (``metainfo['is_query']``); a query has its box as
                its only ``gt_instances`` (input pixels).
            rescale (bool): Boxes in original image pixels.
                Defaults to True.

        Returns:
            list[DetDataSample]: With ``pred_instances`` (``bboxes``,
            ``scores``, ``labels``, ``feats``).
        """
        assert self.with_bbox, 'Bbox head must be implemented.'
        modes = self._test_modes()
        x = self.extract_feat(batch_inputs)
        is_query = [
            bool(s.metainfo.get('is_query', False)) for s in batch_data_samples
        ]
        results_list: List[Optional[InstanceData]] = [None] * len(is_query)
        for query in (False, True):
            inds = [i for i, q in enumerate(is_query) if q == query]
            if not inds:
                continue
            predict = self.predict_query if query else self.predict_gallery
            for i, res in zip(
                    inds,
                    predict(x, batch_inputs, batch_data_samples, inds,
                            rescale, **modes)):
                results_list[i] = res
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def predict_gallery(self,
                        x: Tuple[Tensor],
                        batch_inputs: Tensor,
                        batch_data_samples: SampleList,
                        inds: Sequence[int],
                        rescale: bool = True,
                        reid_mode: str = 'fused',
                        crop_box: str = 'proposal',
                        normalize_fused: bool = False) -> InstanceList:
        """Detections and their features for some samples of the batch.

        Args:
            x (tuple[Tensor]): Feature maps of the whole batch.
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            batch_data_samples (list[DetDataSample]): The batch.
            inds (Sequence[int]): The samples to detect in.
            rescale (bool): Boxes in original pixels. Defaults to True.
            reid_mode (str): One of :data:`REID_MODES`.
            crop_box (str): One of :data:`CROP_BOXES`.
            normalize_fused (bool): L2-normalise the fused features.

        Returns:
            list[InstanceData]: Per sample of ``inds``: ``bboxes``,
            ``scores``, ``labels``, ``feats``.
        """
        if len(inds) != len(batch_data_samples):
            sel = torch.as_tensor(inds, device=batch_inputs.device)
            x = tuple(feat[sel] for feat in x)
            batch_inputs = batch_inputs[sel]
        samples = [batch_data_samples[i] for i in inds]
        if samples[0].get('proposals', None) is None:
            rpn_results_list = self.rpn_head.predict(x, samples, rescale=False)
        else:
            rpn_results_list = [s.proposals for s in samples]
        crop_embedder = None if reid_mode == 'scene' else partial(
            self.embed_boxes, batch_inputs)
        results_list = self.roi_head.predict_gallery(
            x,
            rpn_results_list, [s.metainfo for s in samples],
            rescale=rescale,
            crop_embedder=crop_embedder,
            embed_all_proposals=reid_mode == 'fused_all_proposals',
            crop_box=crop_box,
            normalize_fused=normalize_fused)
        return [
            InstanceData(
                bboxes=res.bboxes,
                scores=res.scores,
                labels=res.labels,
                feats=res.feats) for res in results_list
        ]

    @staticmethod
    def query_box(data_sample: DetDataSample) -> Tensor:
        """The query box ``gt_instances.bboxes[0]`` (input pixels), (1, 4).
        """
        gts = data_sample.get('gt_instances', None)
        if gts is None or len(gts) < 1:
            raise ValueError(
                f'query sample {data_sample.metainfo.get("query_id")} '
                f'({data_sample.metainfo.get("img_path")}) has no box in '
                'gt_instances')
        return get_box_tensor(gts.bboxes)[:1].float()

    @staticmethod
    def _to_original_pixels(boxes: Tensor,
                            data_sample: DetDataSample) -> Tensor:
        """Input-tensor boxes -> original-image pixels (/ scale_factor), as
        mmdet's ``rescale``."""
        scale_factor = data_sample.metainfo.get('scale_factor', (1., 1.))
        return scale_boxes(boxes, [1 / s for s in scale_factor])

    def predict_query(self,
                      x: Tuple[Tensor],
                      batch_inputs: Tensor,
                      batch_data_samples: SampleList,
                      inds: Sequence[int],
                      rescale: bool = True,
                      reid_mode: str = 'fused',
                      crop_box: str = 'proposal',
                      normalize_fused: bool = False) -> InstanceList:
        """Features of the query boxes of some samples of the batch.

        Args:
            x (tuple[Tensor]): Feature maps of the whole batch.
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            batch_data_samples (list[DetDataSample]): The batch.
            inds (Sequence[int]): The query samples.
            rescale (bool): Return the box in original pixels (else input
                pixels). Defaults to True.
            reid_mode (str): ``'scene'`` gives ``p``; the fused modes
                ``(p + g) / 2`` (``g`` from the crop of the query box).
            crop_box (str): Unused (the query box is its own proposal).
            normalize_fused (bool): L2-normalise the fused feature.

        Returns:
            list[InstanceData]: Per sample: ``bboxes`` (1, 4), ``scores``
            [1.], ``labels`` [0], ``feats`` (1, D).
        """
        device = batch_inputs.device
        boxes = torch.cat([
            self.query_box(batch_data_samples[i]).to(device) for i in inds
        ])
        # one box per query sample, none for the other samples of the batch
        per_sample = [boxes.new_zeros((0, 4))] * len(batch_data_samples)
        for j, i in enumerate(inds):
            per_sample[i] = boxes[j:j + 1]
        feats = self.embed_gt_boxes(
            batch_inputs,
            batch_data_samples,
            x=x,
            boxes=per_sample,
            instance_views='none' if reid_mode == 'scene' else 'cropped',
            normalize=normalize_fused)
        return [
            InstanceData(
                bboxes=self._to_original_pixels(
                    boxes[j:j + 1], batch_data_samples[i])
                if rescale else boxes[j:j + 1],
                scores=boxes.new_ones(1),
                labels=torch.zeros(1, dtype=torch.long, device=device),
                feats=feats[j:j + 1]) for j, i in enumerate(inds)
        ]

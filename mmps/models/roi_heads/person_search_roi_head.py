# Copyright (c) OpenMMLab. All rights reserved.
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmdet.utils import ConfigType, InstanceList
from mmengine.structures import InstanceData
from torch import Tensor

from mmps.registry import MODELS

#: mmcv RoI layers without a CPU kernel.
CUDA_ONLY_ROI_LAYERS = ('DeformRoIPool', 'DeformRoIPoolPack',
                        'ModulatedDeformRoIPoolPack')
#: One ``--cfg-options`` line that replaces the RoI layer by RoIAlign.
ROI_ALIGN_CFG_OPTIONS = (
    '--cfg-options model.roi_head.bbox_roi_extractor.roi_layer._delete_=True '
    'model.roi_head.bbox_roi_extractor.roi_layer.type=RoIAlign '
    'model.roi_head.bbox_roi_extractor.roi_layer.output_size="(14,6)" '
    'model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio=0')


def check_roi_layer_device(roi_layer: dict) -> None:
    """Refuse a CUDA-only RoI layer where CUDA is absent, saying what to do.

    mmcv's deformable RoI pools (the reference's ``DeformRoIPoolPack``) have
    no CPU kernel: without this check a CPU run fails deep in the first
    forward pass.

    Args:
        roi_layer (dict): ``bbox_roi_extractor.roi_layer`` config.

    Raises:
        RuntimeError: The layer needs CUDA and ``torch.cuda`` is not
            available.
    """
    layer_type = roi_layer.get('type') if roi_layer else None
    if layer_type in CUDA_ONLY_ROI_LAYERS and not torch.cuda.is_available():
        raise RuntimeError(
            f'model.roi_head.bbox_roi_extractor.roi_layer is {layer_type} '
            '(the reference\'s RoI pooling), which mmcv implements on CUDA '
            'only, and CUDA is not available here. To run on this machine, '
            'pool with RoIAlign instead (a documented deviation, see '
            'configs/dicl/README.md), e.g. `python tools/train.py CONFIG '
            f'{ROI_ALIGN_CFG_OPTIONS}`.')


#: ``crop_embedder(img_idx, boxes)``: embeddings (n, D) of the image crops of
#: ``boxes`` (n, 4) (input-tensor pixels) of image ``img_idx`` of the batch.
CropEmbedder = Callable[[int, Tensor], Tensor]


@MODELS.register_module()
class PersonSearchRoIHead(StandardRoIHead):
    """RoI head of a one-step person search detector.

    A :class:`~mmdet.models.roi_heads.StandardRoIHead` (RoI extractor ->
    ``shared_head`` -> box head) plus a ``reid_head`` that embeds the
    ``shared_head`` output (``bbox_feats``) of a RoI.

    Training (:meth:`loss`): assign and sample, box losses (as mmdet), then
    the re-id step: the scene embeddings of the sampled positives and their
    ground truth go to :meth:`loss_reid`, which returns no loss here; a
    subclass implements the re-id losses there.

    Test: :meth:`predict_gallery` detects and attaches a feature to every
    detection; :meth:`embed_rois` embeds given boxes (queries).

    A CUDA-only RoI layer (mmcv's deformable RoI pools) is refused at
    construction where CUDA is absent (:func:`check_roi_layer_device`).

    Args:
        reid_head (dict): Config of the re-id embedding head, e.g.
            :class:`~mmps.models.ReIDEmbeddingHead`.
        **kwargs: :class:`~mmdet.models.roi_heads.StandardRoIHead` arguments
            (``bbox_roi_extractor``, ``bbox_head``, ``shared_head``,
            ``train_cfg``, ``test_cfg``, ``init_cfg``).
    """

    def __init__(self, reid_head: ConfigType, **kwargs) -> None:
        extractor = kwargs.get('bbox_roi_extractor') or {}
        check_roi_layer_device(extractor.get('roi_layer'))
        super().__init__(**kwargs)
        self.reid_head = MODELS.build(reid_head)

    @property
    def embed_dim(self) -> int:
        """int: Dimension of the re-id features."""
        return self.reid_head.out_channels

    # ------------------------------------------------------------------ #
    # embeddings
    # ------------------------------------------------------------------ #
    def embed_roi_feats(self, roi_feats: Tensor) -> Tensor:
        """Pooled RoI features -> shared head -> re-id head.

        The instance branch calls it on the feature maps of crops (which
        have the RoI size), so scene RoIs and crops share every weight.

        Args:
            roi_feats (Tensor): (N, C, h, w) pooled features, N >= 0.

        Returns:
            Tensor: (N, D) unit-norm embeddings.
        """
        if self.with_shared_head:
            roi_feats = self.shared_head(roi_feats)
        return self.reid_head(roi_feats)

    def embed_rois(self, x: Tuple[Tensor], rois: Tensor) -> Tensor:
        """Scene embeddings of RoIs: RoI features -> shared head -> re-id.

        Args:
            x (tuple[Tensor]): Multi-level feature maps of the batch.
            rois (Tensor): (n, 5) ``(img_idx, x1, y1, x2, y2)`` in
                input-tensor pixels.

        Returns:
            Tensor: (n, D) unit-norm embeddings.
        """
        roi_feats = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        return self.embed_roi_feats(roi_feats)

    def fuse_embeddings(self,
                        scene_embeds: Tensor,
                        crop_embeds: Tensor,
                        normalize: bool = True) -> Tensor:
        """DICL's fused feature ``(p + g) / 2``, L2-normalised by default.

        Training (memory contrast and update, memory initialisation) always
        uses ``normalize((p + g) / 2)``. The reference's test features are
        ``(p + g) / 2`` without re-normalisation (``normalize=False``): its
        norm ``cos(angle(p, g) / 2)`` weights a detection by the agreement
        of its two branches in a dot-product search.

        Args:
            scene_embeds (Tensor): (n, D) scene-branch embeddings ``p``.
            crop_embeds (Tensor): (n, D) instance-branch embeddings ``g``.
            normalize (bool): L2-normalise the mean. Defaults to True.

        Returns:
            Tensor: (n, D) features.
        """
        fused = (scene_embeds + crop_embeds) / 2
        return F.normalize(fused, dim=1) if normalize else fused

    # ------------------------------------------------------------------ #
    # training
    # ------------------------------------------------------------------ #
    def forward(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList = None) -> tuple:
        """Tensor mode: box scores, deltas and embeddings of all proposals.

        Args:
            x (tuple[Tensor]): Multi-level feature maps.
            rpn_results_list (list[InstanceData]): Proposals per image.
            batch_data_samples (list[DetDataSample], optional): Unused.

        Returns:
            tuple[Tensor]: ``cls_score`` (n, num_classes + 1),
            ``bbox_pred`` (n, 4 * num_classes) and ``embeds`` (n, D).
        """
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        bbox_results = self._bbox_forward(x, rois)
        return (bbox_results['cls_score'], bbox_results['bbox_pred'],
                self.reid_head(bbox_results['bbox_feats']))

    def assign_and_sample(
            self, x: Tuple[Tensor], rpn_results_list: InstanceList,
            batch_gt_instances: InstanceList,
            batch_gt_instances_ignore: InstanceList) -> List[SamplingResult]:
        """Assign the proposals to the ground truth and sample RoIs.

        As :meth:`StandardRoIHead.loss` does (GT boxes are added as
        proposals by the sampler when ``add_gt_as_proposals``).

        Args:
            x (tuple[Tensor]): Multi-level feature maps.
            rpn_results_list (list[InstanceData]): Proposals per image
                (``bboxes`` is renamed ``priors`` in place, as mmdet does).
            batch_gt_instances (list[InstanceData]): Ground truth per image.
            batch_gt_instances_ignore (list[InstanceData]): Ignored boxes.

        Returns:
            list[SamplingResult]: Per image; the sampled RoIs are the
            positives first, then the negatives.
        """
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_result = self.bbox_assigner.assign(
                rpn_results, batch_gt_instances[i],
                batch_gt_instances_ignore[i])
            sampling_results.append(
                self.bbox_sampler.sample(
                    assign_result,
                    rpn_results,
                    batch_gt_instances[i],
                    feats=[lvl_feat[i][None] for lvl_feat in x]))
        return sampling_results

    def get_positive_instances(
            self, bbox_feats: Tensor, sampling_results: List[SamplingResult],
            batch_gt_instances: InstanceList) -> InstanceData:
        """The sampled positive RoIs with their embeddings and ground truth.

        Args:
            bbox_feats (Tensor): (R, C, h, w) shared-head features of all
                sampled RoIs (``bbox2roi`` order: per image, positives then
                negatives).
            sampling_results (list[SamplingResult]): Per image.
            batch_gt_instances (list[InstanceData]): Ground truth per image.

        Returns:
            InstanceData: One row per positive, image by image:

            - ``embeds`` (P, D): scene embeddings ``p`` (with gradient);
            - ``bbox_feats`` (P, C, h, w): their shared-head features;
            - ``roi_inds`` (P, ): rows in ``bbox_feats`` / the box-head
              outputs of all sampled RoIs;
            - ``img_inds`` (P, ): image index in the batch;
            - ``gt_inds`` (P, ): ``pos_assigned_gt_inds``, the matched GT box
              within its image;
            - ``batch_gt_inds`` (P, ): the matched GT box in the batch-wise
              concatenation of the GT boxes (the row of its crop embedding);
            - ``priors`` (P, 4), ``gt_bboxes`` (P, 4);
            - every other per-box scalar field of the GT (``instances_ids``,
              ``person_ids``...), indexed by ``gt_inds``.
        """
        device = bbox_feats.device
        roi_inds, img_inds, gt_inds, batch_gt_inds = [], [], [], []
        priors, gt_bboxes, extra = [], [], {}
        roi_start = gt_start = 0
        for i, (res,
                gts) in enumerate(zip(sampling_results, batch_gt_instances)):
            num_pos = len(res.pos_inds)
            pos_gt = res.pos_assigned_gt_inds.long()
            roi_inds.append(
                torch.arange(roi_start, roi_start + num_pos, device=device))
            img_inds.append(pos_gt.new_full((num_pos, ), i))
            gt_inds.append(pos_gt)
            batch_gt_inds.append(pos_gt + gt_start)
            priors.append(get_box_tensor(res.pos_priors))
            gt_bboxes.append(get_box_tensor(res.pos_gt_bboxes))
            for key in gts.keys():
                # per-box scalars (ids, flags); not the boxes, nor the views
                # (``crops``, which reach the losses embedded as gt_embeds)
                if key not in ('bboxes', 'labels') and gts[key].dim() == 1:
                    extra.setdefault(key, []).append(gts[key][pos_gt])
            roi_start += num_pos + len(res.neg_inds)
            gt_start += len(gts)
        roi_inds = torch.cat(roi_inds)
        pos_feats = bbox_feats[roi_inds]
        pos = InstanceData(
            embeds=self.reid_head(pos_feats),
            bbox_feats=pos_feats,
            roi_inds=roi_inds,
            img_inds=torch.cat(img_inds),
            gt_inds=torch.cat(gt_inds),
            batch_gt_inds=torch.cat(batch_gt_inds),
            priors=torch.cat(priors).reshape(-1, 4),
            gt_bboxes=torch.cat(gt_bboxes).reshape(-1, 4))
        for key, values in extra.items():
            if len(values) == len(sampling_results):
                pos[key] = torch.cat(values)
        return pos

    def loss(self,
             x: Tuple[Tensor],
             rpn_results_list: InstanceList,
             batch_data_samples: SampleList,
             gt_embeds: Optional[Tensor] = None) -> dict:
        """Box losses, then the re-id losses of the sampled positives.

        Args:
            x (tuple[Tensor]): Multi-level feature maps.
            rpn_results_list (list[InstanceData]): Proposals per image.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``.
            gt_embeds (Tensor, optional): (G, D) instance-branch embeddings
                of the GT boxes of the batch, concatenated image by image
                (row ``batch_gt_inds`` of a positive is its GT's crop), for
                :meth:`loss_reid`. Defaults to None.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``acc``, ``loss_bbox`` and the
            keys of :meth:`loss_reid`.
        """
        assert len(rpn_results_list) == len(batch_data_samples)
        batch_gt_instances, batch_gt_instances_ignore, _ = \
            unpack_gt_instances(batch_data_samples)
        sampling_results = self.assign_and_sample(x, rpn_results_list,
                                                  batch_gt_instances,
                                                  batch_gt_instances_ignore)
        bbox_results = self.bbox_loss(x, sampling_results)
        losses = dict(bbox_results['loss_bbox'])

        pos_instances = self.get_positive_instances(bbox_results['bbox_feats'],
                                                    sampling_results,
                                                    batch_gt_instances)
        losses.update(
            self.loss_reid(pos_instances, bbox_results, sampling_results,
                           batch_data_samples, gt_embeds))
        return losses

    def loss_reid(self, pos_instances: InstanceData, bbox_results: dict,
                  sampling_results: List[SamplingResult],
                  batch_data_samples: SampleList,
                  gt_embeds: Optional[Tensor]) -> dict:
        """Re-id losses of the sampled RoIs: none in this head.

        The hook for the re-id objectives (many-to-one, dense, memory
        contrast, triplet...): override it in a subclass.

        Args:
            pos_instances (InstanceData): The positives, see
                :meth:`get_positive_instances`.
            bbox_results (dict): ``cls_score``, ``bbox_pred``, ``bbox_feats``
                of all sampled RoIs and ``loss_bbox``.
            sampling_results (list[SamplingResult]): Per image.
            batch_data_samples (list[DetDataSample]): The batch.
            gt_embeds (Tensor, optional): (G, D) crop embeddings of the GT
                boxes, see :meth:`loss`.

        Returns:
            dict[str, Tensor]: Re-id losses (empty here).
        """
        return dict()

    # ------------------------------------------------------------------ #
    # test
    # ------------------------------------------------------------------ #
    def _empty_gallery_results(self, batch_img_metas: List[dict],
                               device: torch.device) -> InstanceList:
        results = []
        for _ in batch_img_metas:
            results.append(
                InstanceData(
                    bboxes=torch.zeros((0, 4), device=device),
                    scores=torch.zeros((0, ), device=device),
                    labels=torch.zeros((0, ), dtype=torch.long, device=device),
                    proposal_inds=torch.zeros((0, ),
                                              dtype=torch.long,
                                              device=device),
                    input_bboxes=torch.zeros((0, 4), device=device),
                    feats=torch.zeros((0, self.embed_dim), device=device)))
        return results

    def predict_gallery(self,
                        x: Tuple[Tensor],
                        rpn_results_list: InstanceList,
                        batch_img_metas: List[dict],
                        rescale: bool = True,
                        crop_embedder: Optional[CropEmbedder] = None,
                        embed_all_proposals: bool = False,
                        crop_box: str = 'proposal',
                        normalize_fused: bool = False) -> InstanceList:
        """Detect persons and give each detection a re-id feature.

        Detection is mmdet's (``test_cfg``: ``score_thr``, ``nms``,
        ``max_per_img``). The feature of a detection is the scene embedding
        ``p`` of the RoI feature of the *proposal* it was regressed from,
        or, with ``crop_embedder``, ``(p + g) / 2`` with ``g`` the crop
        embedding of that proposal's box (``crop_box='proposal'``, the
        reference) or of the detection's final box (``'detection'``),
        L2-normalised with ``normalize_fused``.

        Args:
            x (tuple[Tensor]): Multi-level feature maps.
            rpn_results_list (list[InstanceData]): Proposals per image
                (input-tensor pixels).
            batch_img_metas (list[dict]): Image information.
            rescale (bool): Boxes in original image pixels. Defaults to True.
            crop_embedder (callable, optional): ``(img_idx, boxes) ->
                (n, D)`` crop embeddings of boxes in input-tensor pixels;
                None gives the scene feature ``p``. Defaults to None.
            embed_all_proposals (bool): The reference order: embed every
                proposal (and crop every proposal's box, or every regressed
                box) first, then keep the detections. Same features, much
                more work. Defaults to False (embed the detections only).
            crop_box (str): ``'proposal'`` or ``'detection'``: the box whose
                crop gives ``g``. Defaults to ``'proposal'``.
            normalize_fused (bool): L2-normalise ``(p + g) / 2``.
                Defaults to False (the reference).

        Returns:
            list[InstanceData]: Per image ``bboxes`` (m, 4), ``scores``,
            ``labels``, ``feats`` (m, D), ``proposal_inds`` (m, ) (row of the
            image's proposals) and ``input_bboxes`` (m, 4).
        """
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.shape[0] == 0:
            return self._empty_gallery_results(batch_img_metas, rois.device)

        bbox_results = self._bbox_forward(x, rois)
        num_per_img = tuple(len(p) for p in proposals)
        rois = rois.split(num_per_img)
        bbox_feats = bbox_results['bbox_feats'].split(num_per_img)
        cls_scores = bbox_results['cls_score'].split(num_per_img)
        bbox_preds = bbox_results['bbox_pred']
        bbox_preds = bbox_preds.split(num_per_img) if bbox_preds is not None \
            else (None, ) * len(proposals)
        results_list = self.bbox_head.predict_by_feat(
            rois=rois,
            cls_scores=cls_scores,
            bbox_preds=bbox_preds,
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=self.test_cfg,
            rescale=rescale)

        for i, results in enumerate(results_list):
            if embed_all_proposals:
                scene = self.reid_head(bbox_feats[i])[results.proposal_inds]
            else:
                scene = self.reid_head(bbox_feats[i][results.proposal_inds])
            if crop_embedder is None:
                results.feats = scene
                continue
            if crop_box == 'proposal':
                boxes = rois[i][:, 1:]
                if embed_all_proposals:
                    crops = crop_embedder(i, boxes)[results.proposal_inds]
                else:
                    crops = crop_embedder(i, boxes[results.proposal_inds])
            elif embed_all_proposals:
                # every (proposal, class) regressed box, as decoded for the
                # detections, then the rows of the detections
                all_boxes = self.bbox_head.decode_rois(rois[i], bbox_preds[i],
                                                       batch_img_metas[i])
                k = all_boxes.size(1) // 4
                rows = results.proposal_inds * k
                if k > 1:
                    rows = rows + results.labels
                crops = crop_embedder(i, all_boxes.view(-1, 4))[rows]
            else:
                crops = crop_embedder(i, results.input_bboxes)
            results.feats = self.fuse_embeddings(
                scene, crops, normalize=normalize_fused)
        return results_list

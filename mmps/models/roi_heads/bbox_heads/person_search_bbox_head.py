# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.layers import multiclass_nms
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.models.utils import empty_instances
from mmdet.structures.bbox import get_box_tensor, scale_boxes
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.model import initialize
from mmengine.structures import InstanceData
from torch import Tensor

from mmps.registry import MODELS


@MODELS.register_module()
class PersonSearchBBoxHead(ConvFCBBoxHead):
    """DICL's box head: separate convolutional cls and reg towers.

    .. code:: text

        cls: RoI feat -> [conv3x3 -> BN -> ReLU] x len(conv_out_channels)
                      -> global average pool -> Linear(num_classes + 1)
        reg: RoI feat -> [conv3x3 -> BN -> ReLU] x len(conv_out_channels)
                      -> global average pool -> Linear(4 * num_classes)

    A :class:`~mmdet.models.roi_heads.ConvFCBBoxHead` with only the separate
    conv branches (``num_cls_convs = num_reg_convs = len(conv_out_channels)``,
    no shared layers, no fcs) and average pooling, which differs from it in:

    - per-conv output widths (``conv_out_channels`` is a sequence) and a
      configurable activation;
    - global average pooling, whatever the RoI feature size;
    - the reference's Normal(0, 0.01) init of the tower convs
      (``tower_init_cfg``);
    - the test-time post-processing, which additionally records, for every
      detection, the proposal it came from (``proposal_inds``) and its box in
      input-tensor pixels (``input_bboxes``, before rescaling), so that
      per-proposal features can be attached to the detections.

    Targets, losses and box decoding are mmdet's
    :class:`~mmdet.models.roi_heads.BBoxHead` ones (softmax CE weight 1 and
    L1 weight 10 on deltas with stds (0.1, 0.1, 0.2, 0.2) by default, as in
    the reference).

    Args:
        in_channels (int): RoI feature channels. Defaults to 1024.
        conv_out_channels (Sequence[int]): Output channels of the convs of
            each tower. Defaults to (512, 512).
        roi_feat_size (int or tuple[int]): RoI feature size (h, w).
            Defaults to (14, 6).
        num_classes (int): Foreground classes. Defaults to 1 (person).
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict, optional): Norm layer config.
            Defaults to ``dict(type='BN', requires_grad=True)``.
        act_cfg (dict, optional): Activation config.
            Defaults to ``dict(type='ReLU')``.
        bbox_coder (dict): Box coder. Defaults to ``DeltaXYWHBBoxCoder``
            with stds (0.1, 0.1, 0.2, 0.2).
        reg_class_agnostic (bool): One set of deltas for all classes.
            Defaults to False (class-specific, as the reference).
        loss_cls (dict): Classification loss. Defaults to softmax CE,
            weight 1.
        loss_bbox (dict): Regression loss. Defaults to L1, weight 10.
        tower_init_cfg (dict, optional): Initialization of the towers'
            convolutions, applied after the rest (mmcv's ``ConvModule``
            kaiming-initialises its conv itself). Defaults to
            ``dict(type='Normal', layer='Conv2d', std=0.01, bias=0.)``, the
            reference's; None keeps ``ConvModule``'s kaiming init.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None (mmdet's: normal std 0.01 / 0.001 for the two
            Linear predictors).
        **kwargs: Other :class:`~mmdet.models.roi_heads.BBoxHead` arguments
            (``with_cls``, ``with_reg``, ``reg_decoded_bbox``,
            ``predict_box_type``...).
    """

    def __init__(self,
                 in_channels: int = 1024,
                 conv_out_channels: Sequence[int] = (512, 512),
                 roi_feat_size: Union[int, Tuple[int, int]] = (14, 6),
                 num_classes: int = 1,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: OptConfigType = dict(type='ReLU'),
                 bbox_coder: ConfigType = dict(
                     type='DeltaXYWHBBoxCoder',
                     target_means=[0., 0., 0., 0.],
                     target_stds=[0.1, 0.1, 0.2, 0.2]),
                 reg_class_agnostic: bool = False,
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=False,
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(type='L1Loss', loss_weight=10.0),
                 tower_init_cfg: OptConfigType = dict(
                     type='Normal', layer='Conv2d', std=0.01, bias=0.),
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        if len(conv_out_channels) == 0:
            raise ValueError('PersonSearchBBoxHead needs at least one conv '
                             'per tower (conv_out_channels is empty)')
        num_convs = len(conv_out_channels)
        # read by ``_add_conv_fc_branch`` while ConvFCBBoxHead builds towers
        self.act_cfg = act_cfg
        super().__init__(
            num_cls_convs=num_convs if kwargs.get('with_cls', True) else 0,
            num_reg_convs=num_convs if kwargs.get('with_reg', True) else 0,
            conv_out_channels=tuple(conv_out_channels),
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            with_avg_pool=True,
            roi_feat_size=roi_feat_size,
            in_channels=in_channels,
            num_classes=num_classes,
            bbox_coder=bbox_coder,
            reg_class_agnostic=reg_class_agnostic,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            init_cfg=init_cfg,
            **kwargs)
        # global average pooling, for RoI features of any size
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.tower_init_cfg = tower_init_cfg

    def _add_conv_fc_branch(self,
                            num_branch_convs: int,
                            num_branch_fcs: int,
                            in_channels: int,
                            is_shared: bool = False) -> tuple:
        """Build a branch with one conv per ``conv_out_channels`` entry.

        Unlike :class:`~mmdet.models.roi_heads.ConvFCBBoxHead`, the convs may
        have different widths and use ``act_cfg``; they form an
        ``nn.Sequential`` (the tower can be called on its own). The fcs are
        built as in mmdet.

        Args:
            num_branch_convs (int): Number of convs, at most
                ``len(conv_out_channels)``.
            num_branch_fcs (int): Number of fcs after the convs.
            in_channels (int): Input channels of the branch.
            is_shared (bool): Whether the branch is the shared one.
                Defaults to False.

        Returns:
            tuple: The convs (``nn.Sequential``), the fcs
            (``nn.ModuleList``) and the output dimension of the branch.
        """
        convs = nn.Sequential()
        for out_channels in self.conv_out_channels[:num_branch_convs]:
            convs.append(
                ConvModule(
                    in_channels,
                    out_channels,
                    3,
                    padding=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg))
            in_channels = out_channels
        _, fcs, last_layer_dim = super()._add_conv_fc_branch(
            0, num_branch_fcs, in_channels, is_shared)
        return convs, fcs, last_layer_dim

    def init_weights(self) -> None:
        """mmdet's init of the predictors, then ``tower_init_cfg``."""
        super().init_weights()
        if self.tower_init_cfg is None:
            return
        for tower in (self.cls_convs, self.reg_convs):
            initialize(tower, dict(self.tower_init_cfg))

    def decode_rois(self, roi: Tensor, bbox_pred: Optional[Tensor],
                    img_meta: dict) -> Tensor:
        """Regressed boxes of one image's RoIs, in input-tensor pixels.

        The same decoding as mmdet's ``_predict_by_feat_single`` (clipped to
        ``img_shape``), before any rescaling.

        Args:
            roi (Tensor): (n, 5) RoIs ``(img_idx, x1, y1, x2, y2)``.
            bbox_pred (Tensor, optional): (n, 4 * k) deltas, k = 1 with
                ``reg_class_agnostic`` else ``num_classes``; None without a
                regression branch (the RoIs, clipped).
            img_meta (dict): Image information (``img_shape``).

        Returns:
            Tensor: (n, 4 * k) boxes; row r, columns 4c:4c+4 is the box of
            RoI r for class c (k = 1: the one box of RoI r).
        """
        num_rois = roi.size(0)
        img_shape = img_meta['img_shape']
        if bbox_pred is not None:
            k = 1 if self.reg_class_agnostic else self.num_classes
            bboxes = self.bbox_coder.decode(
                roi.repeat_interleave(k, dim=0)[..., 1:],
                bbox_pred.view(-1, self.bbox_coder.encode_size),
                max_shape=img_shape)
        else:
            bboxes = roi[:, 1:].clone()
            if img_shape is not None:
                bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, img_shape[1])
                bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, img_shape[0])
        return get_box_tensor(bboxes).reshape(num_rois, -1)

    def _predict_by_feat_single(
            self,
            roi: Tensor,
            cls_score: Tensor,
            bbox_pred: Tensor,
            img_meta: dict,
            rescale: bool = False,
            rcnn_test_cfg: Optional[ConfigDict] = None) -> InstanceData:
        """mmdet's post-processing of one image, keeping the provenance.

        Args:
            roi (Tensor): (n, 5) RoIs.
            cls_score (Tensor): (n, num_classes + 1) scores.
            bbox_pred (Tensor): (n, 4 * k) deltas.
            img_meta (dict): Image information.
            rescale (bool): Return boxes in original image pixels.
                Defaults to False.
            rcnn_test_cfg (ConfigDict, optional): ``score_thr``, ``nms``,
                ``max_per_img``; None returns mmdet's raw per-class results.

        Returns:
            InstanceData: ``bboxes`` (m, 4), ``scores`` (m, ), ``labels``
            (m, ) as mmdet, plus ``proposal_inds`` (m, ) the row of ``roi``
            each detection was regressed from and ``input_bboxes`` (m, 4) the
            detection in input-tensor pixels (equal to ``bboxes`` when
            ``rescale`` is False).
        """
        if rcnn_test_cfg is None:
            return super()._predict_by_feat_single(roi, cls_score, bbox_pred,
                                                   img_meta, rescale,
                                                   rcnn_test_cfg)
        results = InstanceData()
        if roi.shape[0] == 0:
            results = empty_instances([img_meta],
                                      roi.device,
                                      task_type='bbox',
                                      instance_results=[results],
                                      box_type=self.predict_box_type,
                                      use_box_type=False,
                                      num_classes=self.num_classes)[0]
            results.proposal_inds = roi.new_zeros((0, ), dtype=torch.long)
            results.input_bboxes = roi.new_zeros((0, 4))
            return results

        if self.custom_cls_channels:
            scores = self.loss_cls.get_activation(cls_score)
        else:
            scores = F.softmax(cls_score, dim=-1)
        num_rois = roi.size(0)
        input_bboxes = self.decode_rois(roi, bbox_pred, img_meta)
        bboxes = input_bboxes
        if rescale:
            assert img_meta.get('scale_factor') is not None
            bboxes = scale_boxes(bboxes,
                                 [1 / s for s in img_meta['scale_factor']])

        det_bboxes, det_labels, inds = multiclass_nms(
            bboxes,
            scores,
            rcnn_test_cfg.score_thr,
            rcnn_test_cfg.nms,
            rcnn_test_cfg.max_per_img,
            return_inds=True,
            box_dim=4)
        # multiclass_nms flattens (roi, class) pairs: index = r * C + c
        proposal_inds = torch.div(
            inds, self.num_classes, rounding_mode='floor')
        input_bboxes = input_bboxes.view(num_rois, -1, 4)
        cols = det_labels if input_bboxes.size(1) > 1 else \
            torch.zeros_like(det_labels)
        results.bboxes = det_bboxes[:, :-1]
        results.scores = det_bboxes[:, -1]
        results.labels = det_labels
        results.proposal_inds = proposal_inds
        results.input_bboxes = input_bboxes[proposal_inds, cols]
        return results

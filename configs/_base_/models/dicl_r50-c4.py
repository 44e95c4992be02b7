# DICL detector: Faster R-CNN on one stride-16 map.
# ResNet-50 caffe with C5 kept at stride 16 -> C4/C5 fusion neck (DCN) -> RPN
# -> 14x6 RoI features -> head DCN -> box towers + 256-d re-id embedding.
#
# ImageNet init from a LOCAL file (nothing is downloaded): the MSRA caffe
# ResNet-50 that mmdet's `open-mmlab://detectron2/resnet50_caffe` resolves to
# (mmengine/hub/openmmlab.json), i.e.
# https://download.openmmlab.com/pretrain/third_party/resnet50_msra-5891d200.pth
# Fetch it once on a connected machine into checkpoints/ (or point
# `model.backbone.init_cfg.checkpoint` elsewhere, or set it to None).
norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    type='DICL',
    data_preprocessor=dict(
        # DetDataPreprocessor + the instance views (gt_instances.crops)
        type='PersonSearchDataPreprocessor',
        mean=[103.530, 116.280, 123.675],  # caffe BGR
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),  # the reference's
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        strides=(1, 2, 2, 1),  # C5 stays at stride 16
        dilations=(1, 1, 1, 1),
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=norm_cfg,
        norm_eval=True,
        style='caffe',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet50_msra-5891d200.pth')),
    neck=dict(
        type='C4C5FusionNeck',
        in_channels=(1024, 2048),
        out_channels=1024,
        dcn=True),
    rpn_head=dict(
        type='RPNHead',
        in_channels=1024,
        feat_channels=1024,
        anchor_generator=dict(
            type='AnchorGenerator',
            # 32 ... 512 px; mmdet's ratio is h / w: tall anchors
            scales=[2, 4, 8, 16, 32],
            ratios=[1.0, 2.0, 3.0],
            strides=[16]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='DICLRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            # The reference's deformable RoI pool. mmcv implements it on GPU
            # only: without CUDA the model refuses to build and says how to
            # switch to RoIAlign (configs/dicl/README.md, "RoI pooling").
            roi_layer=dict(
                type='DeformRoIPoolPack',
                output_size=(14, 6),
                output_channels=1024,
                sampling_ratio=0,
                gamma=0.1),
            out_channels=1024,
            featmap_strides=[16]),
        shared_head=dict(type='DeformConvSharedHead', in_channels=1024),
        bbox_head=dict(
            type='PersonSearchBBoxHead',
            in_channels=1024,
            conv_out_channels=(512, 512),
            roi_feat_size=(14, 6),
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=10.0)),
        reid_head=dict(
            type='ReIDEmbeddingHead',
            in_channels=1024,
            roi_size=(14, 6),
            out_channels=256),
        # DICL: one 256-d slot per training box (sized from the
        # dataset by InstanceMemoryInitHook), momentum 0.2
        memory=dict(type='InstanceMemory', feat_dim=256, momentum=0.2),
        # memory contrast against cluster centroids, hardest 60% negatives
        loss_id=dict(
            type='ClusterMemoryContrastLoss',
            temperature=0.05,
            top_percent=0.6,
            loss_weight=1.0),
        # SIC: many-to-one (1 - p.g) and dense similarity KL (the reference's
        # temperature 1 and element-mean reduction)
        loss_sim=dict(type='ManyToOneLoss', loss_weight=1.0),
        loss_kl=dict(
            type='DenseSimilarityKLLoss',
            temperature=1.0,
            reduction='mean',
            loss_weight=0.1),
        loss_triplet=dict(
            type='BatchHardTripletWithBackgroundLoss',
            margin=0.3,
            bg_weight=0.25,
            loss_weight=1.0)),
    # instance crops: (h, w) = RoI size x 16
    crop_size=(224, 96),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=0,  # anchors crossing the image border ignored
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=12000,
            max_per_img=2000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=8),
        rcnn=dict(
            # MaxIoUAssigner: IoU >= pos_iou_thr positive, [0, neg_iou_thr)
            # negative, in between ignored (never sampled). PRW: 0.7;
            # CUHK-SYSU configs set 0.6.
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.1,
                min_pos_iou=0.7,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=128,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=6000,
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=16),
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.4),
            max_per_img=100),
        # gallery features: 'fused' (p + g of the detections), 'scene' (p),
        # 'fused_all_proposals' (the reference's order: p + g of all 300
        # proposals, then the selection; same features, ~300 crop passes)
        reid_mode='fused',
        # the reference's fused feature: g cut from the RPN proposal a
        # detection was regressed from ('detection': from its final box),
        # (p + g) / 2 not re-normalised (True: normalize((p + g) / 2))
        crop_box='proposal',
        normalize_fused=False))

# DICL sized for CPU runs on the synthetic sets: a narrow ResNet-18 (base 16
# channels) trained from scratch, 64-channel neck / heads, 32 RoIs per image,
# few proposals, plain convs in place of the neck / head DCNs (mmcv's CPU
# deformable-conv backward alone costs ~3x the rest of an iteration here; set
# dcn=True for the reference architecture).
# RoIs (14x6) and instance crops (224x96) keep the reference's sizes: on the
# synthetic PRW set they give 33.5 search mAP against 21.6 with halved ones
# (7x3 / 112x48, configs/dicl/*-roi7x3_*: a cheaper training step).
_base_ = './dicl_r50-c4.py'

norm_cfg = dict(type='BN', requires_grad=True)
channels = 64  # C4 of a ResNet-18 with base_channels=16
model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        style='pytorch',
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        in_channels=(channels, 2 * channels), out_channels=channels,
        dcn=False),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        # RoIAlign (the reference's DeformRoIPoolPack has no CPU kernel)
        bbox_roi_extractor=dict(
            roi_layer=dict(
                _delete_=True,
                type='RoIAlign',
                output_size=(14, 6),
                sampling_ratio=2,
                aligned=True),
            out_channels=channels),
        shared_head=dict(in_channels=channels, dcn=False),
        bbox_head=dict(in_channels=channels, conv_out_channels=(64, 64)),
        reid_head=dict(in_channels=channels)),
    # the reference's minimum proposal sizes (8 / 16 px at test scale 1500x900)
    # scaled to the synthetic frames' 400x240
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=2000, max_per_img=300, min_bbox_size=2),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=100, min_bbox_size=4)))

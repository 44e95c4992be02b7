# DICL sized for CPU runs on the synthetic sets: a narrow ResNet-18 (base 16
# channels) trained from scratch, 64-channel neck / heads, 32 RoIs per image,
# few proposals, plain convs in place of the neck / head DCNs (mmcv's CPU
# deformable-conv backward alone costs ~3x the rest of an iteration here; set
# dcn=True for the reference architecture).
# The synthetic frames are ~1/3 of the reference scale (240-320 px short side,
# people 30-130 px tall), so RoIs and instance crops are halved too: 7x3 RoI
# features and 112x48 crops (the same RoI size x stride-16 rule as the
# reference's 14x6 / 224x96; the pipeline's InstanceViews must match).
_base_ = './dicl_r50-c4.py'

norm_cfg = dict(type='BN', requires_grad=True)
channels = 64  # C4 of a ResNet-18 with base_channels=16
roi_size = (7, 3)
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
        bbox_roi_extractor=dict(
            roi_layer=dict(output_size=roi_size), out_channels=channels),
        shared_head=dict(in_channels=channels, dcn=False),
        bbox_head=dict(
            in_channels=channels,
            conv_out_channels=(64, 64),
            roi_feat_size=roi_size),
        reid_head=dict(in_channels=channels, roi_size=roi_size)),
    crop_size=(roi_size[0] * 16, roi_size[1] * 16),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=2000, max_per_img=300),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=100)))

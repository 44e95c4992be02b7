# DICL on the synthetic PRW-format set (`make data` -> data/synthetic/prw/),
# sized for CPU: a narrow ResNet-18 (base 16 channels) trained from scratch,
# 64-channel neck / heads, 32 RoIs per image, few proposals, plain convs in
# place of the neck / head DCNs (mmcv's CPU deformable-conv backward alone
# costs ~3x the rest of an iteration here; set dcn=True for the reference
# architecture).
_base_ = [
    '../_base_/models/dicl_r50-c4.py', '../_base_/datasets/synthetic_prw.py',
    '../_base_/default_runtime.py'
]

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
        bbox_roi_extractor=dict(out_channels=channels),
        shared_head=dict(in_channels=channels, dcn=False),
        bbox_head=dict(in_channels=channels, conv_out_channels=(64, 64)),
        reid_head=dict(in_channels=channels)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=2000, max_per_img=300),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=100)))

# short side 240 .. 320 (the frames are 240x400)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPersonSearchAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(400, 240), (467, 280), (533, 320)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPersonSearchInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(400, 240), keep_ratio=True),
    dict(type='LoadPersonSearchAnnotations', with_bbox=True),
    dict(type='PackPersonSearchInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=8,
        by_epoch=True,
        milestones=[6],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=2)

val_evaluator = dict(type='PersonSearchMetric')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=10))

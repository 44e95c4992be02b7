# DICL with a ConvNeXt-T backbone from MMPretrain (an optional extra:
# `pip install mmpretrain`, which needs torchvision).
#
# C4 is stage 3 (384 channels, stride 16), C5 stage 4 (768 channels). The
# ConvNeXt downsampling layers have no stride option, so C5 stays at stride
# 32 and the fusion neck resizes its lateral output to C4's size
# (upsample_cfg, as mmdet's FPN). The neck, RPN, RoI extractor, shared head
# DCN, box and re-id heads take 384 channels; everything else is the R50
# config.
_base_ = './dicl_r50-c4_1xb4-26e_prw.py'

# registers mmpretrain's models (the `mmpretrain.` scope below); loading this
# config fails where mmpretrain is not installed
custom_imports = dict(
    imports=['mmpretrain.models'], allow_failed_imports=False)

c4 = 384
model = dict(
    # the ConvNeXt weights are pytorch-style: RGB, ImageNet mean / std
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch='tiny',
        out_indices=(2, 3),
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        # mmdet's ConvNeXt-T checkpoint (ImageNet-1k, MMPretrain format) from
        # a LOCAL file (nothing is downloaded): fetch
        # https://download.openmmlab.com/mmclassification/v0/convnext/downstream/convnext-tiny_3rdparty_32xb128-noema_in1k_20220301-795e9634.pth  # noqa: E501
        # once into checkpoints/.
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/convnext-tiny_3rdparty_32xb128-noema_'
            'in1k_20220301-795e9634.pth',
            prefix='backbone.')),
    neck=dict(
        in_channels=(c4, 2 * c4),
        out_channels=c4,
        upsample_cfg=dict(mode='nearest')),
    rpn_head=dict(in_channels=c4, feat_channels=c4),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(output_channels=c4), out_channels=c4),
        shared_head=dict(in_channels=c4),
        bbox_head=dict(in_channels=c4),
        reid_head=dict(in_channels=c4)))

# Optimiser: AdamW (lr 1e-4, weight decay 0.05, no decay on norms) on the
# reference's 26-epoch schedule (warm-up, steps at 16 / 22) and gradient
# clipping; mmdet's ConvNeXt detectors add layer-wise lr decay, left out
# here; not tuned for DICL.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=0.0001,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))

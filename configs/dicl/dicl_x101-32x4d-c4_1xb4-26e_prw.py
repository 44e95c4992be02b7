# DICL with a ResNeXt-101 32x4d C4 backbone (mmdet's ResNeXt): the same
# channels as ResNet-50 (C4 1024, C5 2048) and the same stride-16 C5
# (strides=(1, 2, 2, 1)); frozen BN as in the R50 config.
_base_ = './dicl_r50-c4_1xb4-26e_prw.py'

model = dict(
    # the ResNeXt weights are pytorch-style: RGB, ImageNet mean / std
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=32,
        base_width=4,
        style='pytorch',
        # ImageNet init from a LOCAL file (nothing is downloaded): what
        # mmdet's `open-mmlab://resnext101_32x4d` resolves to, i.e.
        # https://download.openmmlab.com/pretrain/third_party/resnext101_32x4d-a5af3160.pth  # noqa: E501
        # Fetch it once into checkpoints/.
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnext101_32x4d-a5af3160.pth')))

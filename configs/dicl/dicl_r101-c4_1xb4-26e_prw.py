# DICL with a ResNet-101 C4 backbone: the R50 config with depth 101 (same
# channels: C4 1024, C5 2048, C5 kept at stride 16 by strides=(1, 2, 2, 1)).
_base_ = './dicl_r50-c4_1xb4-26e_prw.py'

# ImageNet init from a LOCAL file (nothing is downloaded): the MSRA caffe
# ResNet-101 that mmdet's `open-mmlab://detectron2/resnet101_caffe` resolves
# to (mmengine/hub/openmmlab.json), i.e.
# https://download.openmmlab.com/pretrain/third_party/resnet101_msra-6cc46731.pth  # noqa: E501
# Fetch it once into checkpoints/.
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet101_msra-6cc46731.pth')))

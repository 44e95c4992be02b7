# DICL with a Swin-T backbone (mmdet's SwinTransformer).
#
# The ResNet recipe carried over: C4 is stage 3 (384 channels, stride 16) and
# C5 is stage 4 (768 channels) kept at stride 16 by a stride-1 last patch
# merging (strides=(4, 2, 2, 1), the counterpart of ResNet's
# strides=(1, 2, 2, 1): overlapping 2x2 merges, the same weights). The fusion
# neck, RPN, RoI extractor, shared head DCN, box and re-id heads take 384
# channels; everything else is the R50 config.
_base_ = './dicl_r50-c4_1xb4-26e_prw.py'

c4 = 384
model = dict(
    # the Swin weights are pytorch-style: RGB, ImageNet mean / std
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.2,
        patch_norm=True,
        strides=(4, 2, 2, 1),  # C5 stays at stride 16
        out_indices=(2, 3),
        with_cp=False,
        # the official Swin-T ImageNet-1k weights, as mmdet's Swin configs
        # use them, from a LOCAL file (nothing is downloaded): fetch
        # https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth  # noqa: E501
        # once into checkpoints/ (convert_weights maps its keys to mmdet's).
        convert_weights=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/swin_tiny_patch4_window7_224.pth')),
    neck=dict(in_channels=(c4, 2 * c4), out_channels=c4),
    rpn_head=dict(in_channels=c4, feat_channels=c4),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(output_channels=c4), out_channels=c4),
        shared_head=dict(in_channels=c4),
        bbox_head=dict(in_channels=c4),
        reid_head=dict(in_channels=c4)))

# Optimiser: AdamW as mmdet's Swin detectors (lr 1e-4, weight decay 0.05, no
# decay on norms and position tables), on the reference's 26-epoch schedule
# (warm-up, steps at 16 / 22) and gradient clipping; not tuned for DICL.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=0.0001,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))

# The synthetic PRW config with halved RoIs and crops (7x3 RoI features,
# 112x48 instance crops, the same RoI size x stride-16 rule as 14x6 / 224x96):
# the synthetic frames are ~1/3 of the reference scale, and a 224x96 crop is
# larger than most of their people. A cheaper training step (DICL 1.27x the
# plain detector against 1.80x) for a weaker model (search mAP 21.6 against
# 33.5 on the synthetic PRW default, seed 0).
_base_ = './dicl_r18-narrow-c4_1xb2-50e_synthetic-prw.py'

roi_size = (7, 3)
crop_size = (112, 48)
model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(roi_layer=dict(output_size=roi_size)),
        bbox_head=dict(roi_feat_size=roi_size),
        reid_head=dict(roi_size=roi_size)),
    crop_size=crop_size)
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadPersonSearchAnnotations', with_bbox=True),
        dict(
            type='RandomChoiceResize',
            scales=[(400, 240), (467, 280), (533, 320)],
            keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='InstanceViews', crop_size=crop_size),
        dict(type='BoxOcclusion', grid=(14, 6), num_cells=2, prob=0.5),
        dict(type='PackPersonSearchInputs'),
    ]))

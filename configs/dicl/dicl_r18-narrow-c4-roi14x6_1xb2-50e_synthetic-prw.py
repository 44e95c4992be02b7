# The synthetic PRW config with the reference's RoI and crop sizes (14x6 RoI
# features, 224x96 instance crops) instead of the halved 7x3 / 112x48: for
# measuring inference and training cost at the reference's proportions on a
# CPU (tools/analysis_tools/benchmark_inference.py --scale 1500 900).
_base_ = './dicl_r18-narrow-c4_1xb2-50e_synthetic-prw.py'

roi_size = (14, 6)
crop_size = (224, 96)
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

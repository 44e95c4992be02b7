# CUHK-SYSU read from its native files (Image/SSM/, annotation/*.mat).
dataset_type = 'CUHKSYSUDataset'
data_root = 'data/CUHK-SYSU/'
backend_args = None

# Reference (DICL): short side in {400, 600, 800, 900, 1000}, long side x5/3,
# flip 0.5; caffe BGR mean, std 1 (in the model's data preprocessor).
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPersonSearchAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(667, 400), (1000, 600), (1333, 800), (1500, 900),
                (1667, 1000)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # DICL's Siamese branch (SIC): a 224x96 view of every GT box, cut from
    # the augmented scene before the occlusion (OIC) masks it
    dict(type='InstanceViews', crop_size=(224, 96)),
    dict(type='BoxOcclusion', grid=(14, 6), num_cells=2, prob=0.5),
    dict(type='PackPersonSearchInputs'),
]
# annotations before the geometric transforms (mmdet's rule): every box,
# the query's too, follows the image into input pixels
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPersonSearchAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1500, 900), keep_ratio=True),
    dict(type='PackPersonSearchInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        gallery_size=100,
        pipeline=test_pipeline,
        backend_args=backend_args))
val_dataloader = test_dataloader

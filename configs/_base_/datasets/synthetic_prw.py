# The synthetic PRW-format set that `make data` writes (tools/misc/make_synthetic_dataset.py):
# native PRW files, small frames, for CPU runs and tests.
_base_ = './prw.py'

data_root = 'data/synthetic/prw/'
# short side 240 .. 320 for training, the frames' own 400x240 for testing
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPersonSearchAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(400, 240), (467, 280), (533, 320)],
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
    dict(type='LoadImageFromFile'),
    dict(type='LoadPersonSearchAnnotations', with_bbox=True),
    dict(type='Resize', scale=(400, 240), keep_ratio=True),
    dict(type='PackPersonSearchInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
val_dataloader = test_dataloader

# DICL reference schedule: batch 4 on 1 GPU, 26 epochs.
# mmps's epoch loop: --resume continues exactly, also from a mid-epoch
# checkpoint (random state and sampler position restored)
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop',
    max_epochs=26,
    val_interval=26)
# The public datasets have no validation split (val = test); evaluating on
# the test set every epoch invites picking a checkpoint on it (a known flaw
# of the reference). Set val_interval=1 to monitor anyway.
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=10, norm_type=2))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1.0 / 200,
        by_epoch=False,
        begin=0,
        end=2242),
    dict(
        type='MultiStepLR',
        begin=0,
        end=26,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]

# The reference lr is for a total batch of 4.
auto_scale_lr = dict(enable=False, base_batch_size=4)

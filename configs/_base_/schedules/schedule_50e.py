# The schedule of the narrow CPU models on the synthetic sets (batch 2, 72
# training images: 36 iterations per epoch, ~7 s per epoch on 2 CPU cores).
# Trained from scratch, so longer than the reference's 26 epochs (with 7x3
# RoIs, synthetic PRW detection AP was 31 after 30 epochs and 44 after 50).
# mmps's epoch loop: --resume continues exactly, also from a mid-epoch
# checkpoint (random state and sampler position restored)
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop',
    max_epochs=50,
    val_interval=50)
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
        end=50,
        by_epoch=True,
        milestones=[40],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=2)

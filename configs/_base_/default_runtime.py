default_scope = 'mmps'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # <work_dir>/training_curves.png, redrawn every epoch and validation
    training_curves=dict(type='TrainingCurveHook'),
    visualization=dict(type='DetVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False

# DDP (distributed runs): device_ids=None, because mmengine passes
# [LOCAL_RANK] by default, which DDP refuses for CPU (gloo) runs; on GPUs DDP
# takes the module's own device. Buffers are not broadcast at every forward
# (mmengine's default too): DICL's memory bank (55,272 x 256 on CUHK-SYSU) is
# kept identical on every rank by its all-gathered updates and broadcast
# labels. find_unused_parameters stays False: every parameter gets a gradient,
# also on a rank whose images have no positive RoI.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel',
    device_ids=None,
    broadcast_buffers=False,
    find_unused_parameters=False)

_base_ = [
    '../_base_/models/dicl_r50-c4.py', '../_base_/datasets/cuhk-sysu.py',
    '../_base_/schedules/schedule_26e.py', '../_base_/default_runtime.py'
]

# CUHK-SYSU: RoI positives at IoU >= 0.6.
model = dict(
    train_cfg=dict(rcnn=dict(assigner=dict(pos_iou_thr=0.6, min_pos_iou=0.6))))

val_evaluator = dict(type='PersonSearchMetric')
test_evaluator = val_evaluator

# DICL's memory: filled before training from the model in eval
# mode over every training image, re-clustered before every epoch
# (min_samples 2 on CUHK-SYSU).
custom_hooks = [
    dict(type='InstanceMemoryInitHook'),
    # reference clustering (the hook's defaults): k1 30, k2 6, eps 0.68/0.70/0.72
    dict(type='PseudoLabelHook', min_samples=2),
]

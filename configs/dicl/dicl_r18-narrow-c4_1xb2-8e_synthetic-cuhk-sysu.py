# DICL on the synthetic CUHK-SYSU-format set (`make data` ->
# data/synthetic/cuhk-sysu/), on a CPU.
_base_ = [
    '../_base_/models/dicl_r18-narrow-c4.py',
    '../_base_/datasets/synthetic_cuhk-sysu.py',
    '../_base_/schedules/schedule_8e.py', '../_base_/default_runtime.py'
]

# CUHK-SYSU: RoI positives at IoU >= 0.6
model = dict(
    train_cfg=dict(rcnn=dict(assigner=dict(pos_iou_thr=0.6, min_pos_iou=0.6))))
val_evaluator = dict(type='PersonSearchMetric')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=10))

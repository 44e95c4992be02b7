_base_ = [
    '../_base_/models/dicl_r50-c4.py', '../_base_/datasets/prw.py',
    '../_base_/schedules/schedule_26e.py', '../_base_/default_runtime.py'
]

# PRW: RoI positives at IoU >= 0.7 (the model default).
val_evaluator = dict(type='PersonSearchMetric')
test_evaluator = val_evaluator

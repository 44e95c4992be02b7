# DICL on the synthetic PRW-format set (`make data` -> data/synthetic/prw/), on a CPU.
_base_ = [
    '../_base_/models/dicl_r18-narrow-c4.py',
    '../_base_/datasets/synthetic_prw.py', '../_base_/schedules/schedule_8e.py',
    '../_base_/default_runtime.py'
]

val_evaluator = dict(type='PersonSearchMetric')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=10))

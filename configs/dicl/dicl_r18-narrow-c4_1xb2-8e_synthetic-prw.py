# DICL on the synthetic PRW-format set (`make data` -> data/synthetic/prw/), on a CPU.
_base_ = [
    '../_base_/models/dicl_r18-narrow-c4.py',
    '../_base_/datasets/synthetic_prw.py', '../_base_/schedules/schedule_8e.py',
    '../_base_/default_runtime.py'
]

val_evaluator = dict(type='PersonSearchMetric')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=10))

# DICL's memory (DESIGN §1.4): filled before training from the model in eval
# mode over every training image, re-clustered before every epoch
# (min_samples 4 on PRW).
custom_hooks = [
    dict(type='InstanceMemoryInitHook'),
    # reference clustering (the hook's defaults): k1 30, k2 6, eps 0.68/0.70/0.72
    dict(type='PseudoLabelHook', min_samples=4),
]

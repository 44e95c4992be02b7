_base_ = [
    '../_base_/models/dicl_r50-c4.py', '../_base_/datasets/prw.py',
    '../_base_/schedules/schedule_26e.py', '../_base_/default_runtime.py'
]

# PRW: RoI positives at IoU >= 0.7 (the model default).
# Both search protocols: the field's (GT-box query: mAP, top-k) and the DICL
# authors' PRW evaluation (best-IoU detection of the query frame as the query,
# similarities x detection score: mAP_ref, top-k_ref), which their published
# 35.5 / 80.9 are under.
val_evaluator = dict(
    type='PersonSearchMetric', protocols=('gt_box', 'best_iou_det'))
test_evaluator = val_evaluator

# DICL's memory: filled before training from the model in eval
# mode over every training image, re-clustered before every epoch
# (min_samples 4 on PRW).
custom_hooks = [
    dict(type='InstanceMemoryInitHook'),
    # reference clustering (the hook's defaults): k1 30, k2 6, eps 0.68/0.70/0.72
    dict(type='PseudoLabelHook', min_samples=4),
]

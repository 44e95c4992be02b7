# DICL on the synthetic CUHK-SYSU-format set (`make data` ->
# data/synthetic/cuhk-sysu/), on a CPU.
_base_ = [
    '../_base_/models/dicl_r18-narrow-c4.py',
    '../_base_/datasets/synthetic_cuhk-sysu.py',
    '../_base_/schedules/schedule_50e.py', '../_base_/default_runtime.py'
]

# CUHK-SYSU: RoI positives at IoU >= 0.6
model = dict(
    train_cfg=dict(rcnn=dict(assigner=dict(pos_iou_thr=0.6, min_pos_iou=0.6))))
# a fixed seed: `tools/train.py` reproduces the results table on a given machine
randomness = dict(seed=0)
val_evaluator = dict(type='PersonSearchMetric')
test_evaluator = val_evaluator
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=10, max_keep_ckpts=2))

# DICL's memory: filled before training from the model in eval
# mode over every training image, re-clustered before every epoch
# (min_samples 2 on CUHK-SYSU). The reference's k1 = 30 neighbours suit ~37 boxes
# per identity (real PRW); the synthetic sets have ~11, and with k1 = 30 every
# k-reciprocal set spans several identities, so that DBSCAN merges them all
# into one cluster. k1 = 10 and eps 0.58/0.60/0.62 were picked on a synthetic
# PRW memory (cluster ARI 0.30 against 0.04 with the reference values, same
# features).
custom_hooks = [
    dict(type='InstanceMemoryInitHook'),
    dict(
        type='PseudoLabelHook',
        min_samples=2,
        k1=10,
        k2=6,
        eps=(0.58, 0.60, 0.62)),
]

# Copyright (c) OpenMMLab. All rights reserved.
"""mmps's registries are children of mmdet's: unprefixed mmdet types build in
mmps scope, nested configs included, and no mmps name shadows an mmdet one."""
import os.path as osp

import mmdet.registry as mmdet_registry
import numpy as np
import pytest
from mmengine import Config, DefaultScope
from mmengine.registry import Registry

import mmps.registry as mmps_registry
from mmps.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
NODES = [n for n in dir(mmps_registry) if not n.startswith('MMDET_')
         and isinstance(getattr(mmps_registry, n), Registry)]


@pytest.fixture(autouse=True, scope='module')
def _scope():
    register_all_modules(init_default_scope=True)
    with DefaultScope.overwrite_default_scope('mmps'):
        yield


def test_every_mmdet_node_has_an_mmps_child():
    mmdet_nodes = {n for n in dir(mmdet_registry)
                   if isinstance(getattr(mmdet_registry, n), Registry)}
    # every mmdet node that mmps uses has a child; mmps adds no orphan node
    assert {'MODELS', 'DATASETS', 'TRANSFORMS', 'TASK_UTILS', 'METRICS',
            'HOOKS'} <= set(NODES)
    for name in NODES:
        child = getattr(mmps_registry, name)
        assert name in mmdet_nodes
        assert child.parent is getattr(mmdet_registry, name)
        assert child.scope == 'mmps'
        # the mmdet sub-package comes first in the locations
        assert child._locations[0].startswith('mmdet.')
        assert any(loc.startswith('mmps') for loc in child._locations)


def test_default_runtime_sets_mmps_scope():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'default_runtime.py'))
    assert cfg.default_scope == 'mmps'


def test_unprefixed_mmdet_transform_builds_in_mmps_scope():
    T = mmps_registry.TRANSFORMS
    resize = T.build(dict(type='Resize', scale=(20, 10), keep_ratio=True))
    assert type(resize).__module__.startswith('mmdet.')
    out = resize(dict(img=np.zeros((20, 40, 3), np.uint8)))
    assert out['img'].shape[:2] == (10, 20)
    # prefixed names keep working
    assert type(T.build(dict(type='mmdet.RandomFlip', prob=1.0))).__name__ \
        == 'RandomFlip'


def test_nested_mmdet_types_build_in_mmps_scope():
    T = mmps_registry.TRANSFORMS
    choice = T.build(
        dict(
            type='RandomChoice',
            transforms=[[dict(type='Resize', scale=(8, 8), keep_ratio=False)],
                        [dict(type='LoadPersonSearchAnnotations')]]))
    names = [type(t).__name__ for tl in choice.transforms for t in tl.transforms]
    assert names == ['Resize', 'LoadPersonSearchAnnotations']

    # an mmdet head whose own children (anchor generator, coder, losses,
    # assigner, sampler) are unprefixed mmdet types in other registries
    head = mmps_registry.MODELS.build(
        dict(
            type='RPNHead',
            in_channels=8,
            feat_channels=8,
            anchor_generator=dict(
                type='AnchorGenerator',
                scales=[2, 4],
                ratios=[1.0, 2.0],
                strides=[16]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
            loss_bbox=dict(type='L1Loss'),
            train_cfg=dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7,
                              neg_iou_thr=0.3, min_pos_iou=0.3),
                sampler=dict(type='RandomSampler', num=16, pos_fraction=0.5),
                allowed_border=-1, pos_weight=-1, debug=False)))
    assert type(head.prior_generator).__name__ == 'AnchorGenerator'
    assert head.num_anchors == 4
    assert type(head.assigner).__name__ == 'MaxIoUAssigner'
    assert type(head.sampler).__name__ == 'RandomSampler'
    assert type(head.loss_bbox).__name__ == 'L1Loss'


def test_mmps_types_found_from_mmps_scope_only():
    assert mmps_registry.DATASETS.get('PRWDataset') is not None
    assert mmps_registry.DATASETS.get('mmps.CUHKSYSUDataset') is not None
    # mmdet's own registry does not know mmps types (no pollution upwards)
    assert 'PRWDataset' not in mmdet_registry.DATASETS._module_dict


def test_no_mmps_name_shadows_an_ancestor():
    for name in NODES:
        child = getattr(mmps_registry, name)
        child.import_from_location()
        parent = child.parent
        while parent is not None:
            clash = set(child.module_dict) & set(parent.module_dict)
            assert not clash, f'{name}: mmps shadows {parent.scope}: {clash}'
            parent = parent.parent

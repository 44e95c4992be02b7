# Copyright (c) OpenMMLab. All rights reserved.
"""InstanceMemoryInitHook and PseudoLabelHook on a tiny synthetic PRW root,
with the narrow CPU DICL model of ``configs/dicl_synthetic_prw.py``."""
import copy
import types
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner import Runner

import mmps.models.clustering as ps_clustering
from mmps.datasets.synthetic import make_synthetic_prw
from mmps.engine.hooks import InstanceMemoryInitHook, PseudoLabelHook
from mmps.engine.hooks.pseudo_label_hook import person_id_labels
from mmps.registry import HOOKS, MODELS, TRANSFORMS
from mmps.testing import get_config
from mmps.utils import register_all_modules


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    register_all_modules()
    root = make_synthetic_prw(
        str(tmp_path_factory.mktemp('prw')),
        seed=3,
        num_images=20,
        num_ids=6,
        image_size=(120, 200)).root
    cfg = get_config('dicl_synthetic_prw.py')
    for loader in ('train_dataloader', 'test_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = str(root) + '/'
    return cfg


def _runner(cfg, model=None):
    """What the hooks use of a Runner, without building one."""
    if model is None:
        torch.manual_seed(0)
        model = MODELS.build(copy.deepcopy(cfg.model))
        model.init_weights()
    return types.SimpleNamespace(
        cfg=cfg,
        model=model.train(),
        train_dataloader=Runner.build_dataloader(
            copy.deepcopy(cfg.train_dataloader)),
        logger=MMLogger.get_current_instance(),
        message_hub=MessageHub.get_instance('mmps_test_hooks'),
        visualizer=mock.MagicMock(),
        epoch=0)


@pytest.fixture(scope='module')
def initialised(cfg):
    runner = _runner(cfg)
    InstanceMemoryInitHook().before_train(runner)
    return runner


def test_the_configs_use_both_hooks():
    for fname, min_samples, k1, eps in [
        ('dicl_synthetic_prw.py', 4, 10, (0.58, 0.60, 0.62)),
        ('dicl_synthetic_cuhk-sysu.py', 2, 10, (0.58, 0.60, 0.62)),
        ('dicl_prw.py', 4, 30, (0.68, 0.70, 0.72)),
        ('dicl_cuhk-sysu.py', 2, 30, (0.68, 0.70, 0.72))
    ]:
        hooks = get_config(fname).custom_hooks
        assert [h.type for h in hooks] == [
            'InstanceMemoryInitHook', 'PseudoLabelHook'
        ]
        built = [HOOKS.build(h) for h in hooks]
        assert isinstance(built[0], InstanceMemoryInitHook)
        assert isinstance(built[1], PseudoLabelHook)
        # the reference clustering (min_samples per dataset), k1 and eps
        # scaled to the synthetic sets' ~11 boxes per identity
        assert built[1].min_samples == min_samples
        assert built[1].eps == eps
        assert (built[1].k1, built[1].k2) == (k1, 6)
        assert built[1].scene_constraint


def test_default_init_pipeline_is_the_train_pipeline_without_randomness(
        cfg):
    runner = types.SimpleNamespace(cfg=cfg)
    pipeline = InstanceMemoryInitHook().deterministic_pipeline(runner)
    assert [t['type'] for t in pipeline] == [
        'LoadImageFromFile', 'LoadPersonSearchAnnotations', 'Resize',
        'InstanceViews', 'PackPersonSearchInputs'
    ]
    assert pipeline[2]['scale'] == (400, 240)  # the test pipeline's scale
    given = [dict(type='LoadImageFromFile')]
    assert InstanceMemoryInitHook(given).deterministic_pipeline(
        runner) == given


def test_init_writes_every_slot(initialised):
    runner = initialised
    model = runner.model
    memory = model.roi_head.memory
    dataset = runner.train_dataloader.dataset
    assert model.training  # mode restored
    assert bool(memory.initialized)
    assert memory.num_slots == dataset.num_instances > 0
    torch.testing.assert_close(
        memory.features.norm(dim=1), torch.ones(memory.num_slots))
    # the slots of one image: normalize((p + g) / 2) of its GT boxes
    hook = InstanceMemoryInitHook()
    pipeline = Compose([
        TRANSFORMS.build(t)
        for t in hook.deterministic_pipeline(runner)
    ])
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(
            pseudo_collate([pipeline(dataset.get_data_info(3))]), False)
        slots, feats = hook.embed_batch(model, data['inputs'],
                                        data['data_samples'])
        x = model.extract_feat(data['inputs'])
        boxes = data['data_samples'][0].gt_instances.bboxes
        boxes = getattr(boxes, 'tensor', boxes)
        p = model.roi_head.embed_rois(
            x, torch.cat([boxes.new_zeros(len(boxes), 1), boxes], 1))
        g = model.embed_crops(data['data_samples'][0].gt_instances.crops)
    model.train()
    torch.testing.assert_close(feats, F.normalize(p + g, dim=1))
    torch.testing.assert_close(memory.features[slots], feats)


def test_init_is_skipped_when_resumed(cfg, initialised):
    memory = initialised.model.roi_head.memory
    state = copy.deepcopy(initialised.model.state_dict())
    runner = _runner(cfg)
    runner.model.load_state_dict(state)  # resizes and restores the memory
    hook = InstanceMemoryInitHook(pipeline=[dict(type='NotATransform')])
    hook.before_train(runner)  # would fail if it ran
    torch.testing.assert_close(runner.model.roi_head.memory.features,
                               memory.features)


def test_init_runs_again_after_load_from_or_another_dataset(
        cfg, initialised):
    state = copy.deepcopy(initialised.model.state_dict())
    n = initialised.model.roi_head.memory.num_slots
    # load_from (not --resume): the checkpoint's memory is not this run's
    runner = _runner(cfg)
    runner.model.load_state_dict(state)
    runner._resume = False
    runner.model.roi_head.memory.features.zero_()  # marks a re-init
    InstanceMemoryInitHook().before_train(runner)
    assert bool((runner.model.roi_head.memory.features.norm(dim=1) >
                 0.99).all())
    # a memory of another dataset (other size), even on --resume
    other = copy.deepcopy(state)
    for key in ('features', 'labels'):
        k = f'roi_head.memory.{key}'
        other[k] = other[k][:n - 3]
    runner = _runner(cfg)
    runner.model.load_state_dict(other)
    assert runner.model.roi_head.memory.num_slots == n - 3
    InstanceMemoryInitHook().before_train(runner)
    memory = runner.model.roi_head.memory
    assert memory.num_slots == n and bool(memory.initialized)
    assert bool((memory.features.norm(dim=1) > 0.99).all())
    assert torch.equal(memory.labels, torch.arange(n))  # reset


def test_person_id_labels():
    labels = person_id_labels(np.array([5, -1, 2, 5, -1, 2, 9]))
    assert labels.tolist() == [1, 3, 0, 1, 4, 0, 2]


def test_person_id_mode_sets_the_identities(cfg, initialised):
    runner = initialised
    head = runner.model.roi_head
    PseudoLabelHook(label_source='person_id').before_train_epoch(runner)
    pids = runner.train_dataloader.dataset.get_person_ids()
    assert torch.equal(head.memory.labels,
                       torch.from_numpy(person_id_labels(pids)))
    info = runner.message_hub.get_info('pseudo_labels')
    assert info['ari'] == pytest.approx(1)
    assert info['nmi'] == pytest.approx(1)
    assert info['num_singletons'] == int((pids < 0).sum()) + sum(
        int((pids == p).sum()) == 1 for p in set(pids[pids >= 0]))


def _fake_clustering(calls, thresholds):

    def generate(features, image_ids, indep_threshold=None, **kwargs):
        calls.append(dict(indep_threshold=indep_threshold, **kwargs))
        n = len(features)
        return dict(
            labels=np.arange(n) // 3,
            indep_threshold=thresholds[len(calls) - 1],
            num_clusters=(n + 2) // 3,
            num_singletons=0)

    return generate


def test_threshold_frozen_after_the_first_epoch(cfg, initialised):
    """The hook's logic with a stand-in clustering: threshold None at the
    first clustering, then the frozen value from the memory buffer."""
    runner = initialised
    memory = runner.model.roi_head.memory
    memory.indep_threshold.fill_(float('nan'))
    runner.visualizer.reset_mock()
    calls = []
    hook = PseudoLabelHook(min_samples=2, k1=5, k2=2)
    with mock.patch.object(ps_clustering, 'generate_pseudo_labels',
                           _fake_clustering(calls, [0.3, 0.9])):
        for epoch in range(2):
            runner.epoch = epoch
            hook.before_train_epoch(runner)
            assert float(memory.indep_threshold) == pytest.approx(0.3)
    assert [c['indep_threshold'] for c in calls] == [None, pytest.approx(0.3)]
    assert calls[0]['min_samples'] == 2 and calls[0]['k1'] == 5
    assert calls[0]['eps'] == (0.68, 0.70, 0.72)
    n = memory.num_slots
    assert torch.equal(memory.labels, torch.arange(n) // 3)
    info = runner.message_hub.get_info('pseudo_labels')
    assert info['num_clusters'] == (n + 2) // 3
    assert info['num_multi_clusters'] + (n % 3 == 1) == info['num_clusters']
    assert runner.visualizer.add_scalars.call_count == 2
    memory.set_labels(torch.arange(n))


def test_real_clustering_on_the_initialised_memory(initialised):
    runner = initialised
    memory = runner.model.roi_head.memory
    memory.indep_threshold.fill_(float('nan'))
    hook = PseudoLabelHook(min_samples=2)
    runner.epoch = 0
    hook.before_train_epoch(runner)
    assert memory.threshold_frozen
    frozen = float(memory.indep_threshold)
    # the scene constraint held: no two boxes of one image in a cluster
    table = runner.train_dataloader.dataset.get_slot_table()
    labels = memory.labels.numpy()
    for label in np.unique(labels):
        images = table['img_ids'][labels == label]
        assert len(images) == len(set(images.tolist())), label
    assert len(np.unique(labels)) == \
        runner.message_hub.get_info('pseudo_labels')['num_clusters']
    assert (np.bincount(labels) > 1).any()  # boxes were grouped
    runner.epoch = 1
    hook.before_train_epoch(runner)
    assert float(memory.indep_threshold) == frozen
    info = runner.message_hub.get_info('pseudo_labels')
    assert {'num_clusters', 'num_singletons', 'ari', 'nmi'} <= set(info)
    memory.set_labels(torch.arange(memory.num_slots))


def test_init_pipeline_knows_the_transforms_by_class_not_by_name(cfg):
    """mmdet.-prefixed types (or subclasses) are recognised as well."""
    cfg = copy.deepcopy(cfg)
    pipeline = cfg.train_dataloader.dataset.pipeline
    for t in pipeline:
        if t.type in ('RandomFlip', 'RandomChoiceResize', 'Resize'):
            t.type = f'mmdet.{t.type}'
    for t in cfg.test_dataloader.dataset.pipeline:
        if t.type == 'Resize':
            t.type = 'mmdet.Resize'
            t.scale = (300, 180)
    runner = types.SimpleNamespace(cfg=cfg)
    derived = InstanceMemoryInitHook().deterministic_pipeline(runner)
    assert [t['type'] for t in derived] == [
        'LoadImageFromFile', 'LoadPersonSearchAnnotations', 'Resize',
        'InstanceViews', 'PackPersonSearchInputs'
    ]
    assert derived[2]['scale'] == (300, 180)


def test_pseudo_label_hook_owns_its_label_source(cfg):
    assert PseudoLabelHook().label_source == 'cluster'
    with pytest.raises(ValueError, match='label_source'):
        PseudoLabelHook(label_source='oim')
    # the former place, on the RoI head, says where it went
    model = copy.deepcopy(cfg.model)
    model.roi_head.label_source = 'person_id'
    with pytest.raises(TypeError, match='PseudoLabelHook'):
        MODELS.build(model)


def test_the_slot_table_is_read_once(cfg, initialised):
    runner = initialised
    dataset = runner.train_dataloader.dataset
    hook = PseudoLabelHook(label_source='person_id')
    with mock.patch.object(type(dataset), 'get_data_info',
                           wraps=dataset.get_data_info) as get_info, \
            mock.patch.object(type(dataset), 'get_slot_table',
                              wraps=dataset.get_slot_table) as get_table:
        for epoch in range(3):
            runner.epoch = epoch
            hook.before_train_epoch(runner)
    assert get_table.call_count == 1
    assert get_info.call_count <= len(dataset)  # one pass at most
    runner.model.roi_head.memory.set_labels(
        torch.arange(runner.model.roi_head.memory.num_slots))

# Copyright (c) OpenMMLab. All rights reserved.
"""DICLRoIHead: DICL's re-id losses in the RoI head's ``loss_reid`` hook."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmps.models.roi_heads import DICLRoIHead
from mmps.registry import MODELS
from mmps.testing import (demo_person_search_inputs, get_detector_cfg,
                          get_roi_head_cfg, shrink_person_search_cfg)

H, W = 96, 128  # input size; features at stride 16: 6 x 8
SIC = {'loss_sim', 'loss_kl'}
REID = {'loss_sim', 'loss_kl', 'loss_id', 'loss_triplet'}
BOX = {'loss_cls', 'loss_bbox', 'acc'}


def _head(num_slots=16, **kwargs):
    cfg = get_roi_head_cfg(
        shrink_person_search_cfg(get_detector_cfg('dicl_prw.py')))
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.memory.resize_(num_slots)
    # a non-trivial memory: random unit slots, two-slot clusters
    head.memory.init_features(
        torch.arange(num_slots), torch.randn(num_slots, head.embed_dim))
    head.memory.set_labels(torch.arange(num_slots) // 2)
    return head.train()


def _inputs(head, num_items, views=True, seed=0):
    c = head.bbox_roi_extractor.out_channels
    x = (torch.randn(len(num_items), c, H // 16, W // 16), )
    data = demo_person_search_inputs(
        len(num_items), (3, H, W), num_items=num_items, seed=seed)
    samples = data['data_samples']
    # the GT boxes as proposals (plus jittered copies): positives guaranteed
    proposals = []
    for s in samples:
        boxes = s.gt_instances.bboxes
        jitter = torch.cat([boxes + 1, boxes - 1, boxes + 2])
        proposals.append(InstanceData(bboxes=torch.cat([boxes, jitter])))
    num_gt = sum(num_items)
    gt_embeds = F.normalize(torch.randn(num_gt, head.embed_dim), dim=1) \
        if views else None
    return x, proposals, samples, gt_embeds


def _loss(head, num_items=(2, 3), views=True):
    x, proposals, samples, gt_embeds = _inputs(head, list(num_items), views)
    return head.loss(x, proposals, samples, gt_embeds=gt_embeds)


def _total(losses):
    return sum(v for k, v in losses.items() if k.startswith('loss'))


def test_build_from_the_reference_config():
    head = _head()
    assert isinstance(head, DICLRoIHead)
    assert head.memory.feat_dim == 256 and head.memory.momentum == 0.2
    assert head.loss_id.temperature == 0.05
    assert head.loss_id.top_percent == 0.6 and head.loss_id.loss_weight == 1
    assert head.loss_sim.loss_weight == 1
    assert head.loss_kl.loss_weight == 0.1
    assert head.loss_kl.temperature == 1 and head.loss_kl.reduction == 'mean'
    assert head.loss_triplet.margin == 0.3
    assert head.loss_triplet.bg_weight == 0.25


def test_bad_arguments():
    with pytest.raises(TypeError, match='PseudoLabelHook'):
        _head(label_source='person_id')  # a setting of the hook now
    with pytest.raises(ValueError, match='feat_dim'):
        _head(memory=dict(type='InstanceMemory', feat_dim=128))


@pytest.mark.parametrize('views', [True, False])
def test_loss_keys_and_backward(views):
    head = _head()
    losses = _loss(head, views=views)
    expected = BOX | REID if views else BOX | (REID - SIC)
    assert set(losses) == expected
    for key in expected - {'acc'}:
        assert torch.isfinite(losses[key]), key
    assert losses['loss_id'] > 0
    _total(losses).backward()
    assert head.reid_head.fc.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('views', [True, False])
def test_no_positive_gives_zero_reid_losses_and_updates(views):
    head = _head()
    calls = []
    update = head.memory.update
    head.memory.update = lambda f, s: calls.append(len(s)) or update(f, s)
    before = head.memory.features.clone()
    losses = _loss(head, num_items=(0, 0), views=views)
    assert calls == [0]  # the collective runs even without positives
    assert torch.equal(head.memory.features, before)
    for key in REID & set(losses):
        assert float(losses[key]) == 0
    _total(losses).backward()


def test_memory_update_writes_the_fused_features_of_the_positives():
    head = _head()
    seen = {}
    update = head.memory.update

    def record(feats, slots):
        seen.update(feats=feats.clone(), slots=slots.clone())
        update(feats, slots)

    head.memory.update = record
    before = head.memory.features.clone()
    _loss(head, num_items=(2, 3))
    assert not seen['feats'].requires_grad
    assert set(seen['slots'].tolist()) == set(range(5))
    changed = (head.memory.features != before).any(1).nonzero().flatten()
    assert changed.tolist() == list(range(5))
    torch.testing.assert_close(head.memory.features.norm(dim=1),
                               torch.ones(16))


@pytest.mark.parametrize('triplet_positives', ['mean', 'fused'])
def test_loss_reid_steps_exact_values(triplet_positives):
    """p, g = gt_embeds[batch_gt_inds], f = normalize((p + g) / 2), targets
    = slot labels; the triplet sees the un-normalised (p + g) / 2 (the
    reference's, or f) for the positives and the negatives' scene embeddings
    labelled -1; the memory is updated with f after the losses."""
    head = _head(triplet_positives=triplet_positives)
    c = head.bbox_roi_extractor.out_channels
    bbox_feats = torch.randn(6, c, 14, 6)
    roi_inds = torch.tensor([0, 1, 3])
    p = head.reid_head(bbox_feats[roi_inds])
    gt_embeds = F.normalize(torch.randn(4, head.embed_dim), dim=1)
    pos = InstanceData(
        embeds=p,
        roi_inds=roi_inds,
        batch_gt_inds=torch.tensor([2, 2, 0]),
        instances_ids=torch.tensor([7, 7, 4]))
    memory_before = head.memory.features.clone()
    losses = head.loss_reid(pos, dict(bbox_feats=bbox_feats), [], [],
                            gt_embeds)

    g = gt_embeds[[2, 2, 0]]
    f = F.normalize((p + g) / 2, dim=1)
    targets = torch.tensor([3, 3, 2])  # labels = slot // 2
    torch.testing.assert_close(losses['loss_sim'], head.loss_sim(p, g))
    torch.testing.assert_close(losses['loss_kl'], head.loss_kl(p, g))
    torch.testing.assert_close(
        losses['loss_id'],
        head.loss_id(f, targets, memory_before, torch.arange(16) // 2))
    neg = head.reid_head(bbox_feats[[2, 4, 5]])
    torch.testing.assert_close(
        losses['loss_triplet'],
        head.loss_triplet(
            torch.cat([(p + g) / 2 if triplet_positives == 'mean' else f,
                       neg]), torch.tensor([3, 3, 2, -1, -1, -1])))
    # M[y] <- 0.2 M[y] + 0.8 f, renormalised, in order (slot 7 twice)
    m = memory_before.clone()
    for y, row in zip([7, 7, 4], f.detach()):
        m[y] = F.normalize(0.2 * m[y] + 0.8 * row, dim=0)
    torch.testing.assert_close(head.memory.features, m)


@pytest.mark.parametrize('ablation,keys', [
    (dict(loss_sim=None, loss_kl=None, loss_triplet=None), {'loss_id'}),
    (dict(loss_kl=None, loss_triplet=None), {'loss_id', 'loss_sim'}),
    (dict(loss_triplet=None), {'loss_id', 'loss_sim', 'loss_kl'}),
    (dict(loss_id=None), {'loss_sim', 'loss_kl', 'loss_triplet'}),
])
def test_ablations(ablation, keys):
    head = _head(**ablation)
    before = head.memory.features.clone()
    losses = _loss(head)
    assert set(losses) == BOX | keys
    assert not torch.equal(head.memory.features, before)  # always updated
    _total(losses).backward()


def test_the_losses_follow_the_slot_labels_of_the_memory():
    """Whatever set them (clusters or identities), the memory's labels are
    the targets: one cluster for every slot leaves nothing to contrast."""
    torch.manual_seed(0)
    head = _head()
    state = {k: v.clone() for k, v in head.state_dict().items()}
    head.memory.set_labels(torch.zeros(16, dtype=torch.long))
    torch.manual_seed(1)
    one = _loss(head)
    head.load_state_dict(state)  # two-slot clusters again, same memory
    torch.manual_seed(1)
    pairs = _loss(head)
    # one cluster: the positive centroid is the only class, no negative
    assert float(one['loss_id']) == pytest.approx(0, abs=1e-5)
    assert float(one['loss_triplet']) == 0  # no negative identity
    assert float(pairs['loss_id']) > 0.5
    assert float(pairs['loss_triplet']) > 0
    # the box losses do not depend on the labels
    torch.testing.assert_close(one['loss_cls'], pairs['loss_cls'])


def test_slots_outside_the_memory_fail_loudly():
    head = _head(num_slots=2)
    with pytest.raises(ValueError, match='slots'):
        _loss(head, num_items=(2, 3))


def test_training_without_the_memory_init_hook_is_reported():
    """An unsized memory fails with the fix; an unfilled one warns once."""
    cfg = get_roi_head_cfg(
        shrink_person_search_cfg(get_detector_cfg('dicl_prw.py')))
    head = MODELS.build(cfg).train()
    with pytest.raises(RuntimeError, match='InstanceMemoryInitHook'):
        _loss(head)
    head.memory.resize_(16)  # sized, never filled
    with _LogCapture() as logs:
        _loss(head)
        _loss(head)
    warned = [m for m in logs if 'never initialised' in m]
    assert len(warned) == 1


class _LogCapture:
    """Collect the messages of mmengine's current logger."""

    def __enter__(self):
        import logging

        from mmengine.logging import MMLogger
        self.messages = []
        self.logger = MMLogger.get_current_instance()
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.messages.append(
            record.getMessage())
        self.logger.addHandler(self.handler)
        return self.messages

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)


def test_triplet_positives_must_be_known():
    with pytest.raises(ValueError, match='triplet_positives'):
        _head(triplet_positives='normalized')

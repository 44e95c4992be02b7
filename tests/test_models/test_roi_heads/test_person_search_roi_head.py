# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from mmengine.structures import InstanceData

from mmps.models.roi_heads import PersonSearchRoIHead
from mmps.registry import MODELS
from mmps.testing import (demo_person_search_inputs, get_detector_cfg,
                          get_roi_head_cfg, shrink_person_search_cfg)

H, W = 96, 128  # input size; features at stride 16: 6 x 8


class RecordingRoIHead(PersonSearchRoIHead):
    """Records what the re-id hook receives."""

    def loss_reid(self, pos_instances, bbox_results, sampling_results,
                  batch_data_samples, gt_embeds):
        self.recorded = dict(
            pos=pos_instances,
            bbox_results=bbox_results,
            sampling_results=sampling_results,
            gt_embeds=gt_embeds)
        return dict(loss_reid=pos_instances.embeds.sum())


def _cfg():
    return get_roi_head_cfg(
        shrink_person_search_cfg(get_detector_cfg('dicl_prw.py')))


def _head(cls=None):
    cfg = _cfg()
    if cls is None:
        return MODELS.build(cfg)
    cfg.pop('type')
    for key in ('memory', 'loss_id', 'loss_sim', 'loss_kl',
                'loss_triplet'):  # DICLRoIHead's own arguments
        cfg.pop(key, None)
    return cls(**cfg)


def _feats(head, n=2):
    c = head.bbox_roi_extractor.out_channels
    return (torch.randn(n, c, H // 16, W // 16), )


def _proposals(nums, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in nums:
        xy = torch.rand(n, 2, generator=g) * torch.tensor([W - 30., H - 50.])
        wh = torch.rand(n, 2, generator=g) * 20 + torch.tensor([10., 30.])
        out.append(InstanceData(bboxes=torch.cat([xy, xy + wh], 1)))
    return out


def test_build_from_config():
    head = _head()
    assert isinstance(head, PersonSearchRoIHead)
    assert type(head.shared_head).__name__ == 'DeformConvSharedHead'
    assert type(head.bbox_head).__name__ == 'PersonSearchBBoxHead'
    assert type(head.reid_head).__name__ == 'ReIDEmbeddingHead'
    assert head.embed_dim == 256
    assert head.bbox_roi_extractor.roi_layers[0].output_size == (14, 6)


def test_loss_and_the_reid_hook():
    head = _head(RecordingRoIHead)
    head.train()
    data = demo_person_search_inputs(2, (3, H, W), num_items=[3, 2])
    samples = data['data_samples']
    x = _feats(head)
    gt_embeds = torch.randn(5, 256)
    losses = head.loss(x, _proposals([30, 30]), samples, gt_embeds=gt_embeds)
    assert {'loss_cls', 'loss_bbox', 'acc', 'loss_reid'} <= set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())

    rec = head.recorded
    pos, results = rec['pos'], rec['sampling_results']
    assert rec['gt_embeds'] is gt_embeds
    assert len(pos) == sum(len(r.pos_inds) for r in results) > 0
    assert torch.equal(pos.gt_inds,
                       torch.cat([r.pos_assigned_gt_inds for r in results]))
    assert torch.equal(
        pos.img_inds,
        torch.cat([
            torch.full((len(r.pos_inds), ), i) for i, r in enumerate(results)
        ]))
    # batch-wise GT index: the row of the GT in the concatenated GT list
    gts = [s.gt_instances for s in samples]
    all_boxes = torch.cat([get_box_tensor(g.bboxes) for g in gts])
    assert torch.equal(pos.gt_bboxes, all_boxes[pos.batch_gt_inds])
    assert torch.equal(
        pos.instances_ids,
        torch.cat([g.instances_ids for g in gts])[pos.batch_gt_inds])
    assert torch.equal(
        pos.person_ids,
        torch.cat([g.person_ids for g in gts])[pos.batch_gt_inds])
    # positives are IoU >= 0.7 with their GT (PRW setting)
    ious = bbox_overlaps(pos.priors, pos.gt_bboxes, is_aligned=True)
    assert (ious >= 0.7 - 1e-6).all()
    # their rows among all sampled RoIs, and their embeddings
    bbox_feats = rec['bbox_results']['bbox_feats']
    assert len(bbox_feats) == sum(len(r.priors) for r in results)
    assert torch.equal(pos.bbox_feats, bbox_feats[pos.roi_inds])
    labels = head.bbox_head.get_targets(results, head.train_cfg)[0]
    assert (labels[pos.roi_inds] == 0).all()
    assert (labels == 0).sum() == len(pos)
    assert torch.allclose(pos.embeds, head.reid_head(pos.bbox_feats))
    assert torch.allclose(pos.embeds.norm(dim=1), torch.ones(len(pos)))
    # the embeddings are trained through the hook's losses
    losses['loss_reid'].backward()
    assert head.reid_head.fc.weight.grad.abs().sum() > 0
    assert head.shared_head.conv.weight.grad.abs().sum() > 0


def test_loss_without_gt():
    head = _head(RecordingRoIHead)
    head.train()
    data = demo_person_search_inputs(2, (3, H, W), num_items=[0, 2])
    losses = head.loss(
        _feats(head), _proposals([20, 20]), data['data_samples'])
    assert torch.isfinite(losses['loss_cls'])
    assert (head.recorded['pos'].img_inds == 1).all()

    data = demo_person_search_inputs(2, (3, H, W), num_items=[0, 0])
    losses = head.loss(
        _feats(head), _proposals([20, 20]), data['data_samples'])
    assert losses['loss_bbox'].item() == 0
    assert len(head.recorded['pos']) == 0
    assert head.recorded['pos'].embeds.shape == (0, 256)


def test_default_hook_adds_no_loss():
    head = _head(PersonSearchRoIHead).train()
    data = demo_person_search_inputs(2, (3, H, W), num_items=[2, 2])
    losses = head.loss(
        _feats(head), _proposals([10, 10]), data['data_samples'])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'acc'}


def _metas(n=2, scale=2.):
    return [dict(img_shape=(H, W), scale_factor=(scale, scale))] * n


def _box_embedder(calls):
    proj = torch.randn(4, 256, generator=torch.Generator().manual_seed(1))

    def embed(img_idx, boxes):
        calls.append((img_idx, boxes.clone()))
        return F.normalize(boxes @ proj, dim=1)

    return embed, proj


def test_predict_gallery_scene_features_are_the_proposals():
    head = _head().eval()
    x = _feats(head)
    props = _proposals([25, 0])  # the second image has no proposal
    with torch.no_grad():
        results = head.predict_gallery(x, props, _metas(), rescale=True)
        res = results[0]
        assert len(res) > 0 and len(results[1]) == 0
        assert results[1].feats.shape == (0, 256)
        assert res.feats.shape == (len(res), 256)
        assert torch.allclose(res.feats.norm(dim=1), torch.ones(len(res)))
        assert torch.allclose(res.bboxes * 2, res.input_bboxes, atol=1e-4)
        # p of a detection = embedding of the RoI of its proposal
        rois = torch.cat(
            [torch.zeros(len(res), 1), props[0].bboxes[res.proposal_inds]], 1)
        assert torch.allclose(res.feats, head.embed_rois(x, rois), atol=1e-5)


def test_predict_gallery_fused_and_all_proposals():
    head = _head().eval()
    x = _feats(head)
    calls = []
    embed, proj = _box_embedder(calls)
    with torch.no_grad():
        scene = head.predict_gallery(x, _proposals([25, 12]), _metas())
        fused = head.predict_gallery(
            x,
            _proposals([25, 12]),
            _metas(),
            crop_embedder=embed,
            crop_box='detection',
            normalize_fused=True)
        # only the detections are cropped
        assert [c[0] for c in calls] == [0, 1]
        assert [len(c[1]) for c in calls] == [len(r) for r in fused]
        calls.clear()
        ref = head.predict_gallery(
            x,
            _proposals([25, 12]),
            _metas(),
            crop_embedder=embed,
            embed_all_proposals=True,
            crop_box='detection',
            normalize_fused=True)
        # the reference order crops every proposal's (regressed) box
        assert [len(c[1]) for c in calls] == [25, 12]
        # the reference's features: g from the proposal box, no
        # re-normalisation; the same with all proposals embedded first
        calls.clear()
        proposals = _proposals([25, 12])
        boxes = [p.bboxes.clone() for p in proposals]
        by_prop = head.predict_gallery(
            x, proposals, _metas(), crop_embedder=embed)
        assert [len(c[1]) for c in calls] == [len(r) for r in by_prop]
        by_prop_all = head.predict_gallery(
            x,
            _proposals([25, 12]),
            _metas(),
            crop_embedder=embed,
            embed_all_proposals=True)
    for s, p, pa, b in zip(scene, by_prop, by_prop_all, boxes):
        g = F.normalize(b[p.proposal_inds] @ proj, dim=1)
        assert torch.allclose(p.feats, (s.feats + g) / 2, atol=1e-6)
        assert torch.equal(p.bboxes, pa.bboxes)
        assert torch.allclose(p.feats, pa.feats, atol=1e-6)
    for s, f, r in zip(scene, fused, ref):
        g = F.normalize(f.input_bboxes @ proj, dim=1)
        assert torch.allclose(
            f.feats, F.normalize(s.feats + g, dim=1), atol=1e-5)
        assert torch.equal(f.bboxes, r.bboxes)
        assert torch.allclose(f.feats, r.feats, atol=1e-5)


def test_predict_gallery_without_proposals():
    head = _head().eval()
    calls = []
    embed, _ = _box_embedder(calls)
    results = head.predict_gallery(
        _feats(head), _proposals([0, 0]), _metas(), crop_embedder=embed)
    assert [len(r) for r in results] == [0, 0]
    assert results[0].feats.shape == (0, 256)
    assert results[0].bboxes.shape == (0, 4)


@pytest.mark.parametrize('n', [7, 0])
def test_tensor_forward(n):
    head = _head().eval()
    cls_score, bbox_pred, embeds = head.forward(
        _feats(head, 1), _proposals([n]))
    assert cls_score.shape == (n, 2) and bbox_pred.shape == (n, 4)
    assert embeds.shape == (n, 256)


def test_deform_roi_pool_switch_builds():
    """The reference's RoI layer (documented in the model config) builds;
    mmcv has no CPU kernel for it, so only GPU runs can use it."""
    extractor = MODELS.build(
        dict(
            type='SingleRoIExtractor',
            roi_layer=dict(
                type='DeformRoIPoolPack',
                output_size=(14, 6),
                output_channels=16,
                sampling_ratio=2),
            out_channels=16,
            featmap_strides=[16]))
    layer = extractor.roi_layers[0]
    assert type(layer).__name__ == 'DeformRoIPoolPack'
    assert tuple(layer.output_size) == (14, 6)
    assert layer.spatial_scale == 1 / 16

# Copyright (c) OpenMMLab. All rights reserved.
"""DICL's instance branch in training: the pipeline's views of the GT boxes."""
import copy

import pytest
import torch

from mmps.registry import MODELS
from mmps.testing import (demo_person_search_inputs, get_detector_cfg,
                          prepare_instance_memory, shrink_person_search_cfg)


def _model():
    cfg = shrink_person_search_cfg(get_detector_cfg('dicl_prw.py'))
    cfg.data_preprocessor.type = 'PersonSearchDataPreprocessor'
    model = MODELS.build(cfg)
    model.init_weights()
    prepare_instance_memory(model)
    return model


def _with_views(model, data, num_views=None):
    """Add uint8 views of the right size to every sample's GT."""
    h, w = model.crop_size
    gen = torch.Generator().manual_seed(0)
    for sample in data['data_samples'][:num_views]:
        n = len(sample.gt_instances)
        sample.gt_instances.crops = torch.randint(
            0, 256, (n, 3, h, w), generator=gen, dtype=torch.uint8)
    return data


def test_embed_gt_instances_uses_the_packed_views():
    model = _model().eval()
    data = _with_views(model, demo_person_search_inputs(2, num_items=[2, 3]))
    raw = [s.gt_instances.crops.clone() for s in data['data_samples']]
    data = model.data_preprocessor(data, True)
    with torch.no_grad():
        embeds = model.embed_gt_instances(data['inputs'],
                                          data['data_samples'])
        pre = model.data_preprocessor.preprocess_crops(torch.cat(raw))
        expected = model.embed_crops(pre)
    assert embeds.shape == (5, model.roi_head.embed_dim)
    torch.testing.assert_close(embeds, expected)
    torch.testing.assert_close(embeds.norm(dim=1), torch.ones(5))


def test_no_views_no_instance_branch_and_mixed_batches_fail():
    model = _model()
    data = demo_person_search_inputs(2, num_items=[1, 2])
    pre = model.data_preprocessor(copy.deepcopy(data), True)
    assert model.embed_gt_instances(pre['inputs'],
                                    pre['data_samples']) is None
    # the training step runs with views in the batch
    views = model.data_preprocessor(_with_views(model, copy.deepcopy(data)),
                                    True)
    losses = model.loss(views['inputs'], views['data_samples'])
    assert torch.isfinite(sum(v for k, v in losses.items()
                              if k.startswith('loss') and
                              isinstance(v, torch.Tensor)))
    mixed = model.data_preprocessor(
        _with_views(model, copy.deepcopy(data), num_views=1), True)
    with pytest.raises(ValueError, match='some samples of the batch'):
        model.embed_gt_instances(mixed['inputs'], mixed['data_samples'])


def test_embed_gt_boxes_by_instance_views():
    """One method embeds given boxes: training views, test crops or p."""
    model = _model().eval()
    data = _with_views(model, demo_person_search_inputs(2, num_items=[2, 3]))
    data = model.data_preprocessor(data, True)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        x = model.extract_feat(inputs)
        boxes = [s.gt_instances.bboxes for s in samples]
        rois = torch.cat([
            torch.cat([b.new_full((len(b), 1), i), b], 1)
            for i, b in enumerate(boxes)
        ])
        p = model.roi_head.embed_rois(x, rois)
        g_views = model.embed_gt_instances(inputs, samples)
        g_crops = model.embed_boxes(inputs, rois[:, 0], rois[:, 1:])
        packed = model.embed_gt_boxes(inputs, samples)
        cropped = model.embed_gt_boxes(
            inputs, samples, instance_views='cropped', normalize=False)
        scene = model.embed_gt_boxes(inputs, samples, x=x,
                                     instance_views='none')
        # given boxes: the second image's last box only
        one = model.embed_gt_boxes(
            inputs, samples, boxes=[boxes[0][:0], boxes[1][2:]],
            instance_views='cropped', normalize=False)
    torch.testing.assert_close(
        packed, torch.nn.functional.normalize(p + g_views, dim=1))
    torch.testing.assert_close(cropped, (p + g_crops) / 2)
    assert not torch.allclose(g_views, g_crops)  # two different views
    torch.testing.assert_close(scene, p)
    torch.testing.assert_close(one, cropped[4:])
    with pytest.raises(ValueError, match='instance_views'):
        model.embed_gt_boxes(inputs, samples, instance_views='views')

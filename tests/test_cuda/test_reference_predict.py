# Copyright (c) OpenMMLab. All rights reserved.
"""Gallery and query prediction of the reference config on CUDA.

The reference's test features: ``(p + g) / 2`` without re-normalisation,
``g`` cut from the RPN proposal; a query is the feature of its own box.
"""
import torch

from .utils import (CUDA_ONLY, build_reference_model, build_split, collate,
                    reference_cfg)

pytestmark = CUDA_ONLY


def test_gallery_and_query_prediction(reference_prw_root):
    cfg = reference_cfg()
    dataset = build_split(cfg, reference_prw_root, 'test')
    model = build_reference_model(cfg, num_slots=8).eval()
    assert model.test_cfg.get('normalize_fused', False) is False
    gallery = collate(dataset, [0, 1])
    query_index = dataset.num_gallery
    query = collate(dataset, [query_index])
    with torch.no_grad():
        gallery_out = model.test_step(gallery)
        query_out = model.test_step(query)

    for sample in gallery_out:
        pred = sample.pred_instances
        n = len(pred)
        assert pred.bboxes.shape == (n, 4) and pred.feats.shape == (n, 256)
        assert pred.bboxes.is_cuda and torch.isfinite(pred.feats).all()
        h, w = sample.metainfo['ori_shape']
        assert (pred.bboxes[:, 2] <= w + 1).all()  # original pixels
        assert (pred.bboxes[:, 3] <= h + 1).all()
        # the mean of two unit vectors: norm <= 1, not re-normalised
        assert (pred.feats.norm(dim=1) <= 1 + 1e-5).all()

    q = query_out[0].pred_instances
    assert q.feats.shape == (1, 256) and torch.isfinite(q.feats).all()
    gt_box = dataset[query_index]['data_samples'].gt_instances.bboxes
    torch.testing.assert_close(q.bboxes.cpu(),
                               torch.as_tensor(gt_box.tensor
                                               if hasattr(gt_box, 'tensor')
                                               else gt_box).float()[:1])
    assert 0 < q.feats.norm() <= 1 + 1e-5

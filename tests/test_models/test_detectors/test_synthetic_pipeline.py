# Copyright (c) OpenMMLab. All rights reserved.
"""The CPU configs on real packed samples: a tiny generated root, the
config's dataloaders, ``predict`` on a gallery and a query sample, one
training step and the person search metric over the test split."""
import copy

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

from mmps.datasets.synthetic import (make_synthetic_cuhk_sysu,
                                     make_synthetic_prw)
from mmps.registry import MODELS
from mmps.testing import get_config

MAKERS = {
    'dicl_synthetic_prw.py': make_synthetic_prw,
    'dicl_synthetic_cuhk-sysu.py': make_synthetic_cuhk_sysu,
}


@pytest.fixture(scope='module', params=sorted(MAKERS))
def setup(request, tmp_path_factory):
    fname = request.param
    root = tmp_path_factory.mktemp(fname[:-3])
    MAKERS[fname](
        str(root), seed=7, num_images=12, num_ids=6, image_size=(120, 200))
    cfg = get_config(fname)
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(root) + '/'
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return cfg, model


def _first(dataset, is_query):
    return next(
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['is_query'] == is_query)


def test_predict_on_packed_gallery_and_query_samples(setup):
    cfg, model = setup
    model.eval()
    dataset = Runner.build_dataloader(cfg.test_dataloader).dataset
    gallery = dataset[_first(dataset, False)]
    query = dataset[_first(dataset, True)]
    # the 120x200 frames are resized x2 by the test pipeline
    assert query['data_samples'].scale_factor == pytest.approx((2., 2.))

    with torch.no_grad():
        out_g, out_q = model.test_step(pseudo_collate([gallery, query]))
    pred = out_g.pred_instances
    assert pred.feats.shape == (len(pred), 256)
    assert pred.bboxes.shape == (len(pred), 4)
    if len(pred):
        assert pred.bboxes[:, 2].max() <= 200 + 1e-3  # original pixels

    # one frame for every box: the query box follows the image (x2) into
    # input pixels, and the prediction reports it in original pixels
    box = query['data_samples'].gt_instances.bboxes.tensor
    original = torch.tensor(
        dataset.get_data_info(_first(dataset, True))['instances'][0]['bbox'])
    torch.testing.assert_close(box[0], original * 2)
    torch.testing.assert_close(out_q.pred_instances.bboxes[0], original)
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([query]), False)
        inputs = data['inputs']
        x = model.extract_feat(inputs)
        b = box
        p = model.roi_head.embed_rois(x, torch.cat([torch.zeros(1, 1), b], 1))
        g = model.embed_boxes(inputs, 0, b)
    # the reference's query feature: (p + g) / 2, not re-normalised
    assert torch.allclose(out_q.pred_instances.feats, (p + g) / 2, atol=1e-5)


def test_one_training_step(setup):
    cfg, model = setup
    model.train()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    model.roi_head.memory.resize_(loader.dataset.num_instances)
    optim_wrapper = build_optim_wrapper(model,
                                        copy.deepcopy(cfg.optim_wrapper))
    log = model.train_step(next(iter(loader)), optim_wrapper)
    assert {'loss', 'loss_rpn_cls', 'loss_cls', 'loss_bbox'} <= set(log)
    assert torch.isfinite(log['loss'])


def test_metric_over_the_test_split(setup):
    cfg, model = setup
    model.eval()
    model.test_cfg['reid_mode'] = 'scene'  # the cheapest
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(copy.deepcopy(cfg.test_evaluator))
    evaluator.dataset_meta = loader.dataset.metainfo
    try:
        with torch.no_grad():
            for data in loader:
                evaluator.process(model.test_step(data), data)
        metrics = evaluator.evaluate(len(loader.dataset))
    finally:
        model.test_cfg['reid_mode'] = 'fused'
    assert 'mAP' in metrics and 0 <= metrics['mAP'] <= 1

# Copyright (c) OpenMMLab. All rights reserved.
"""SearchVisualizationHook: on hand-made test outputs (exact ranking and
colours), and through ``tools/test.py --show-dir`` on a tiny synthetic root."""
import os
import os.path as osp
import subprocess
import sys
import types

import cv2
import pytest
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from mmps.engine.hooks import SearchVisualizationHook
from mmps.evaluation import PersonSearchMetric
from mmps.registry import HOOKS
from tests.test_apis.utils import make_tiny_prw, tiny_search_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _unit(*v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def _gallery_sample(img_id, path, boxes, scores, feats, gt_boxes, gt_pids):
    s = DetDataSample(
        metainfo=dict(img_id=img_id, img_path=path, is_query=False))
    s.pred_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor(scores, dtype=torch.float32),
        feats=torch.tensor(np.array(feats), dtype=torch.float32).reshape(
            len(scores), 3))
    s.gt_instances = InstanceData(
        bboxes=torch.tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4),
        person_ids=torch.tensor(gt_pids, dtype=torch.long))
    return s


def _query_sample(query_id, path, box, feat, pid, own):
    s = DetDataSample(
        metainfo=dict(
            img_id=100 + query_id, img_path=path, is_query=True,
            query_id=query_id, query_img_index=own, gallery_img_ids=None))
    s.pred_instances = InstanceData(
        bboxes=torch.tensor([box], dtype=torch.float32),
        scores=torch.ones(1),
        feats=torch.tensor(feat[None]))
    s.gt_instances = InstanceData(
        bboxes=torch.tensor([box], dtype=torch.float32),
        person_ids=torch.tensor([pid]))
    return s


def test_hook_ranks_and_draws(tmp_path):
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f'img{i}.jpg'))
        cv2.imwrite(paths[-1], np.full((60, 100, 3), 40 * i, np.uint8))
    q = _unit(1, 0, 0)
    outputs = [
        # gallery 0: a true match (pid 7, IoU 1) and a wrong person
        _gallery_sample(0, paths[0], [[10, 10, 30, 50], [50, 10, 70, 50]],
                        [0.9, 0.8], [q, _unit(1, 1, 0)],
                        [[10, 10, 30, 50], [50, 10, 70, 50]], [7, 3]),
        # gallery 1: the query's own image, left out of its gallery
        _gallery_sample(1, paths[1], [[5, 5, 25, 45]], [0.99], [q],
                        [[5, 5, 25, 45]], [7]),
        # gallery 2: the best feature but a low score, and a box off the gt
        _gallery_sample(2, paths[2], [[0, 0, 20, 40], [60, 10, 80, 50]],
                        [0.3, 0.7], [q, _unit(1, 0.2, 0)],
                        [[40, 10, 60, 50]], [7]),
    ]
    queries = [
        _query_sample(0, paths[1], [5, 5, 25, 45], q, 7, own=1),
        _query_sample(1, paths[1], [5, 5, 25, 45], q, -1, own=1),
        _query_sample(5, paths[1], [5, 5, 25, 45], q, 7, own=1),
    ]
    out_dir = str(tmp_path / 'show')
    hook = HOOKS.build(
        dict(type='SearchVisualizationHook', out_dir=out_dir, num_queries=2,
             topk=10, det_thresh=0.5, height=80))
    assert isinstance(hook, SearchVisualizationHook)
    # the hook asks the metric for rankings; the metric ranks
    metric = PersonSearchMetric()
    evaluator = Evaluator([metric])
    runner = types.SimpleNamespace(logger=MMLogger.get_current_instance(),
                                   test_evaluator=evaluator)
    hook.before_test_epoch(runner)
    # queries and gallery images arrive in any order, over several batches
    evaluator.process([queries[0], outputs[2]])
    evaluator.process(outputs[:2] + queries[1:])
    metrics = evaluator.evaluate(len(outputs) + len(queries))
    # query 5 >= num_queries is not ranked
    assert [r['query_id'] for r in metric.rankings] == [0, 1]

    hits = metric.rankings[0]['hits']
    assert [(h['img_id'], h['box']) for h in hits] == [
        (0, (10., 10., 30., 50.)), (2, (60., 10., 80., 50.)),
        (0, (50., 10., 70., 50.))
    ]
    assert [h['match'] for h in hits] == [True, False, False]
    hits = metric.rankings[1]['hits']
    assert len(hits) == 3 and metric.rankings[1]['person_id'] == -1
    assert not any(h['match'] for h in hits)

    hook.after_test_epoch(runner, metrics)
    assert sorted(os.listdir(out_dir)) == ['query_0000.jpg', 'query_0001.jpg']
    picture = cv2.imread(osp.join(out_dir, 'query_0000.jpg'))
    assert picture.shape[0] > 80 and picture.shape[1] > 3 * 100 * 80 / 60


@pytest.mark.slow
def test_test_py_show_dir(tmp_path):
    """A randomly initialised model scores below 0.5: the threshold of the
    metric (which the hook takes) is set to 0 to draw hits."""
    num = 3
    root = make_tiny_prw(str(tmp_path / 'prw'))
    config = str(tmp_path / 'tiny_dicl.py')
    tiny_search_config(root).dump(config)
    show = tmp_path / 'show'
    out = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'), config, '--work-dir',
        str(tmp_path / 'w'), '--show-dir',
        str(show), '--show-queries',
        str(num), '--cfg-options', 'test_evaluator.det_thresh=0.0'
    ], capture_output=True, text=True, cwd=REPO, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert f'{num} search result pictures written' in log
    assert sorted(os.listdir(show)) == [
        f'query_{i:04d}.jpg' for i in range(num)
    ]
    assert '| mAP' in log  # the metrics are still computed

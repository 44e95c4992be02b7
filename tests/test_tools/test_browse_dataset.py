# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/browse_dataset.py: pictures of packed training
samples (scene with GT boxes, then the instance crops)."""
import glob
import importlib.util
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from mmps.datasets.synthetic import make_synthetic_prw

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'browse_dataset.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('browse_dataset_tool',
                                                  SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
GREEN, RED, TITLE_H = tool.GREEN, tool.RED, tool.TITLE_H


def _sample(num_boxes):
    scene = torch.full((3, 100, 160), 128, dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_name='a.jpg', flip=False))
    boxes = torch.tensor([[10., 20., 40., 90.], [60., 10., 90., 95.]])
    sample.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(boxes[:num_boxes]),
        crops=torch.zeros((num_boxes, 3, 56, 24), dtype=torch.uint8),
        occluded=torch.tensor([False, True])[:num_boxes],
        person_ids=torch.tensor([3, -1])[:num_boxes])
    return dict(inputs=scene, data_samples=sample)


def test_draw_sample():
    img = tool.draw_sample(_sample(2))
    # title bar, then scene (100 high) beside 1 row of two 56x24 crops
    assert img.shape == (TITLE_H + 100, 160 + 6 + 2 * 30, 3)
    scene = img[TITLE_H:]
    # box 0 green (not occluded), box 1 red (occluded), on the scene ...
    assert tuple(scene[50, 10]) == GREEN
    assert tuple(scene[50, 60]) == RED
    # ... and around their crops
    assert tuple(scene[30, 166]) == GREEN
    assert tuple(scene[30, 196]) == RED
    # no boxes: the scene alone
    assert tool.draw_sample(_sample(0)).shape == (TITLE_H + 100, 160, 3)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_synthetic_prw(
        str(tmp_path_factory.mktemp('prw')), seed=4, num_images=12,
        num_ids=4, image_size=(120, 200)).root


def test_browse_dataset_cli(tmp_path, root):
    out_dir = str(tmp_path / 'out')
    # --cfg-options: BoxOcclusion (train pipeline step 5) masks every box
    out = subprocess.run(
        [sys.executable, SCRIPT,
         osp.join(REPO, 'configs/dicl_synthetic_prw.py'), '--output-dir',
         out_dir, '--num', '3', '--seed', '0', '--data-root', root,
         '--cfg-options', 'train_dataloader.dataset.pipeline.5.prob=1.0'],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    files = sorted(glob.glob(osp.join(out_dir, '*.png')))
    assert len(files) == 3 and out.stdout.split() == files
    for f in files:
        img = cv2.imread(f)
        # a scene of the train pipeline (short side 240, 280 or 320; a 240
        # one grows to a row of crops: 224 + an 18 px caption) and at least
        # one 224x96 crop beside it
        assert img.shape[0] - TITLE_H in (242, 280, 320), img.shape
        assert img.shape[1] > 400 + 96, img.shape
        # every box occluded: red frames, no green one
        assert (img == np.array(RED, np.uint8)).all(-1).any()
        assert not (img == np.array(GREEN, np.uint8)).all(-1).any()

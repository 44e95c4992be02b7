# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/get_flops.py: parameters and FLOPs of the DICL
detector (gallery forward, instance branch, per component)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'get_flops.py')
COMPONENTS = ('backbone', 'neck', 'rpn_head', 'roi_head')


def test_get_flops_synthetic_config(tmp_path):
    out_json = str(tmp_path / 'flops.json')
    out = subprocess.run(
        [sys.executable, SCRIPT,
         osp.join(REPO, 'configs', 'dicl_synthetic_prw.py'), '--shape', '120',
         '200', '--device', 'cpu', '--json', out_json, '--cfg-options',
         'model.test_cfg.rpn.max_per_img=20'],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = dict(
        line.split(': ', 1) for line in out.stdout.splitlines()
        if ': ' in line)
    with open(out_json) as f:
        result = json.load(f)
    assert result['model'] == printed['model'] == 'DICL'
    # padded to the preprocessor's size divisor (32, the reference's)
    assert result['input_shape'] == '1x3x128x224'
    assert result['crop_shape'] == '1x3x224x96'
    assert 0 < result['proposals'] <= 20  # --cfg-options reached the model
    for key in ('total', *COMPONENTS):
        assert result[f'params_M/{key}'] > 0, key
        assert float(printed[f'params_M/{key}']) > 0, key
    total = result['params_M/total']
    assert sum(result[f'params_M/{k}'] for k in COMPONENTS) == \
        pytest.approx(total, rel=1e-6)
    for key in ('gallery', 'instance_crop', *COMPONENTS):
        assert result[f'flops_G/{key}'] > 0, key
        assert float(printed[f'flops_G/{key}']) > 0, key
    # the gallery forward is the sum of its components
    assert sum(result[f'flops_G/{k}'] for k in COMPONENTS) == \
        pytest.approx(result['flops_G/gallery'], rel=1e-6)


def test_deformable_conv_counted_as_conv():
    """mmcv's DeformConv2dFunction is a Python op for the tracer: the tool
    counts it as the convolution of the same shape (plus its offset conv)."""
    import importlib.util

    import torch

    from mmps.models.layers.deform_conv import AnyBatchDeformConv2dPack
    spec = importlib.util.spec_from_file_location('get_flops_tool', SCRIPT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    layer = AnyBatchDeformConv2dPack(8, 16, 3, padding=1, bias=False).eval()
    with torch.no_grad():
        flops = tool.count_flops(layer, (torch.randn(1, 8, 10, 12), )).total()
    conv = 10 * 12 * 16 * 8 * 9
    offset_conv = 10 * 12 * 18 * 8 * 9  # 2 x 3 x 3 offsets per position
    assert flops == conv + offset_conv

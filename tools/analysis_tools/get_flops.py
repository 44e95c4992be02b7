# Copyright (c) OpenMMLab. All rights reserved.
"""Parameters and FLOPs of a person search detector.

Counted with MMEngine's :class:`~mmengine.analysis.FlopAnalyzer` (the
counter of ``get_model_complexity_info``, as in mmdet's ``get_flops.py``;
one multiply-add = one FLOP) on random inputs, the model in eval mode:

- ``flops_G/gallery``: the tensor-mode forward of one gallery image of
  ``--shape H W`` (padded to the preprocessor's size divisor): backbone +
  neck, RPN (with its proposal selection), then the RoI head's box and
  re-id branches on the ``proposals`` RPN proposals (mmdet's
  ``TwoStageDetector._forward``);
- ``flops_G/instance_crop``: the instance branch on one crop of
  ``crop_size`` (224x96: ``model.embed_crops``). Fused gallery features
  (``reid_mode='fused'``) cost about ``gallery + detections x
  instance_crop``;
- the same split per component (``backbone``, ``neck``, ``rpn_head``,
  ``roi_head`` and the RoI head's ``shared_head``, ``bbox_head``,
  ``reid_head``) and the parameters per component.

Deformable convolutions (mmcv's ``DeformConv2dFunction``, a Python op for
the tracer) are counted as convolutions of the same shape; RoIAlign and NMS
are not counted.

Prints ``name: value`` lines (params in M, FLOPs in G).

Example::

    python tools/analysis_tools/get_flops.py configs/dicl_prw.py \\
        --shape 900 1500 \\
        --cfg-options model.backbone.init_cfg=None
"""
import argparse
import json
import math
import warnings
from collections import OrderedDict
from typing import Any, List, Sequence

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.structures import InstanceData

from mmps.registry import MODELS
from mmps.utils import register_all_modules

COMPONENTS = ('backbone', 'neck', 'rpn_head', 'roi_head',
              'roi_head.shared_head', 'roi_head.bbox_head',
              'roi_head.reid_head')
DCN_OPS = ('prim::PythonOp.DeformConv2dFunction',
           'prim::PythonOp.ModulatedDeformConv2dFunction')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='gallery input height and width; defaults to the scale of the '
        'test pipeline\'s Resize (short side x long side)')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device of the forward passes')
    parser.add_argument('--json', help='also write the values to this file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file, e.g. '
        'model.backbone.init_cfg=None')
    return parser.parse_args()


def _dcn_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """A deformable convolution as a convolution: out elements x Cin/g x k².

    Inputs of ``DeformConv2dFunction``: ``input, offset, weight, ...``
    (``ModulatedDeformConv2dFunction``: ``input, offset, mask, weight,
    ...``): the weight is the first 4-d input after the offset.
    """
    shapes = [v.type().sizes() for v in inputs
              if hasattr(v.type(), 'sizes') and v.type().sizes() is not None]
    weight = [s for s in shapes[2:] if len(s) == 4][0]  # (Cout, Cin/g, k, k)
    out = outputs[0].type().sizes()  # (N, Cout, H, W)
    return int(math.prod(out) * math.prod(weight[1:]))


def default_shape(cfg: Config) -> Sequence[int]:
    """(H, W) of the test pipeline's ``Resize`` scale, else (900, 1500)."""
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        pipeline = []
    for step in pipeline:
        if step.get('type') == 'Resize' and step.get('scale'):
            w, h = step['scale']
            return min(w, h), max(w, h)
    return 900, 1500


def gallery_sample(model, height: int, width: int, device: str) -> tuple:
    """A random preprocessed gallery batch of one (H, W) image, padded."""
    from mmdet.structures import DetDataSample
    divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1) or 1
    pad_h = int(math.ceil(height / divisor) * divisor)
    pad_w = int(math.ceil(width / divisor) * divisor)
    inputs = torch.randn(1, 3, pad_h, pad_w, device=device)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(height, width),
            ori_shape=(height, width),
            pad_shape=(pad_h, pad_w),
            batch_input_shape=(pad_h, pad_w),
            scale_factor=(1., 1.),
            is_query=False))
    sample.gt_instances = InstanceData()
    return inputs, [sample]


def count_flops(model, inputs) -> FlopAnalyzer:
    """FlopAnalyzer of ``model(inputs)`` with the DCN handle, quiet."""
    analyzer = FlopAnalyzer(model, inputs)
    for op in DCN_OPS:
        analyzer.set_op_handle(op, _dcn_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return analyzer


def complexity(model, height: int, width: int, device: str) -> dict:
    """The values printed (see the module docstring)."""
    result = OrderedDict()
    inputs, data_samples = gallery_sample(model, height, width, device)
    result['input_shape'] = 'x'.join(str(s) for s in inputs.shape)

    params = parameter_count(model)
    result['params_M/total'] = params[''] / 1e6
    for name in COMPONENTS:
        if name in params:
            result[f'params_M/{name}'] = params[name] / 1e6

    forward = model.forward
    proposals = []
    rpn_predict = model.rpn_head.predict

    def rpn_predict_counted(*args, **kwargs):
        out = rpn_predict(*args, **kwargs)
        proposals.append(sum(len(res) for res in out))
        return out

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            model.rpn_head.predict = rpn_predict_counted
            model.forward = lambda x: forward(x, data_samples, mode='tensor')
            scene = count_flops(model, (inputs, ))
            result['flops_G/gallery'] = scene.total() / 1e9
            by_module = scene.by_module()
            for name in COMPONENTS:
                if name in by_module:
                    result[f'flops_G/{name}'] = by_module[name] / 1e9
            result['proposals'] = proposals[-1] if proposals else 0

            crop = torch.randn(1, 3, *model.crop_size, device=device)
            model.forward = model.embed_crops
            instance = count_flops(model, (crop, ))
            result['crop_shape'] = 'x'.join(str(s) for s in crop.shape)
            result['flops_G/instance_crop'] = instance.total() / 1e9
    finally:
        del model.forward, model.rpn_head.predict  # back to the class's
    return result


def main():
    args = parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    height, width = args.shape if args.shape else default_shape(cfg)

    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model = revert_sync_batchnorm(model).to(args.device).eval()
    result = complexity(model, height, width, args.device)
    result = OrderedDict([('model', type(model).__name__),
                          ('config', args.config), *result.items()])
    for key, value in result.items():
        print(f'{key}: {value:.4f}' if isinstance(value, float) else
              f'{key}: {value}')
    print('note: FLOPs = multiply-adds; RoIAlign and NMS not counted; fused '
          'gallery features add instance_crop per kept detection')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()

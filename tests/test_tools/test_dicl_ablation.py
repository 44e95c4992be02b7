# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/dicl_ablation.py: the variants' configs, the table."""
import importlib.util
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    path = osp.join(ROOT, 'tools', 'analysis_tools', 'dicl_ablation.py')
    spec = importlib.util.spec_from_file_location('dicl_ablation_tool', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _types(cfg):
    return [t['type'] for t in cfg.train_dataloader.dataset.pipeline]


def _label_source(cfg):
    hook, = [h for h in cfg.custom_hooks if h.type == 'PseudoLabelHook']
    return hook.get('label_source', 'cluster')


def test_variant_configs_change_one_thing_each():
    tool = _tool()
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'dicl_synthetic_prw.py'))
    v = {name: tool.variant_config(cfg, name) for name in tool.VARIANTS}
    dicl = v['dicl']
    assert dicl.to_dict() == cfg.to_dict()  # the config itself
    assert 'InstanceViews' in _types(dicl) and 'BoxOcclusion' in _types(dicl)
    # supervised: identities instead of clusters, nothing else
    assert _label_source(v['supervised']) == 'person_id'
    assert v['supervised'].model == dicl.model
    assert _types(v['supervised']) == _types(dicl)
    # dense: no occlusion
    assert 'BoxOcclusion' not in _types(v['dense'])
    assert v['dense'].model.roi_head.loss_kl is not None
    # many-to-one: no dense loss either
    assert v['many_to_one'].model.roi_head.loss_kl is None
    assert v['many_to_one'].model.roi_head.loss_sim is not None
    assert 'InstanceViews' in _types(v['many_to_one'])
    # memory only: no instance branch at all, scene features at test time
    mem = v['memory']
    assert mem.model.roi_head.loss_sim is None
    assert 'InstanceViews' not in _types(mem)
    assert mem.model.test_cfg.reid_mode == 'scene'
    assert mem.model.roi_head.loss_id is not None
    # the input config is left as it was
    assert _label_source(cfg) == 'cluster'
    with pytest.raises(ValueError, match='unknown variant'):
        tool.variant_config(cfg, 'nope')


def test_last_scalars_and_table(tmp_path):
    tool = _tool()
    run = tmp_path / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    lines = [{'pseudo_labels/ari': 0.1, 'step': 0},
             {'pseudo_labels/ari': 0.4, 'step': 1},
             {'mAP': 0.25, 'top-1': 0.5, 'det_ap': 0.75, 'step': 2}]
    (run / 'scalars.json').write_text(
        '\n'.join(json.dumps(x) for x in lines) + '\n')
    last = tool.last_scalars(str(tmp_path))
    assert last['pseudo_labels/ari'] == 0.4 and last['mAP'] == 0.25
    table = tool.markdown_table({'dicl': dict(
        mAP=25.0, top1=50.0, det_ap=75.0, ari=0.4, random_mAP=2.5,
        mAP_vs_random=10.0, train_s=300.0)})
    assert '| + occlusion (OIC) = DICL | 25.00 | 50.00 | 75.00 | 0.400 | ' \
        '2.50 | 10.0x | 300 s |' in table
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        tool.last_scalars(str(tmp_path / 'empty'))

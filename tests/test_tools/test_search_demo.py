# Copyright (c) OpenMMLab. All rights reserved.
"""tools/demo/search_demo.py on a tiny synthetic root with a randomly
initialised shrunk model: the printed ranking, the picture, the index."""
import glob
import importlib.util
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import cv2
import pytest
import torch

from mmps.registry import MODELS
from mmps.utils import register_all_modules
from mmps.visualization import draw_search_result
from tests.test_apis.utils import (make_tiny_prw, read_queries,
                                   tiny_search_config)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'demo', 'search_demo.py')
HIT = re.compile(r'^\s*(\d+)\s+([-0-9.]+)\s+([0-9.]+)\s+'
                 r'([-0-9. ]+?)\s{2,}(\S+)$')


def demo_main(argv):
    spec = importlib.util.spec_from_file_location('search_demo', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def parse_hits(out):
    hits = []
    for line in out.splitlines():
        m = HIT.match(line)
        if m:
            hits.append(
                dict(rank=int(m.group(1)), similarity=float(m.group(2)),
                     score=float(m.group(3)),
                     box=tuple(float(v) for v in m.group(4).split()),
                     img_path=m.group(5)))
    return hits


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('demo')
    root = make_tiny_prw(str(tmp / 'prw'))
    config = str(tmp / 'tiny_dicl.py')
    cfg = tiny_search_config(root)
    cfg.dump(config)
    # fixed random weights: a model without a checkpoint differs every run
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    checkpoint = str(tmp / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    _, query, box = read_queries(root)[0]
    frames = sorted(glob.glob(osp.join(root, 'frames', '*.jpg')))
    return dict(root=root, config=config, checkpoint=checkpoint, query=query,
                box=box, frames=frames)


@pytest.mark.slow
def test_search_demo(setup, tmp_path, capsys):
    box = setup['box']
    # the gallery: 4 frames and the query's own frame (left out by default)
    gallery = str(tmp_path / 'gallery')
    os.makedirs(gallery)
    for path in setup['frames'][:4] + [setup['query']]:
        shutil.copy(path, gallery)
    query = osp.join(gallery, osp.basename(setup['query']))
    index = str(tmp_path / 'index.npz')
    out_file = str(tmp_path / 'result.jpg')
    args = [
        '--config', setup['config'], '--checkpoint', setup['checkpoint'],
        '--query', query, '--query-box',
        *map(str, box), '--gallery', gallery, '--topk', '3', '--det-thresh',
        '0', '--index', index, '--out', out_file
    ]
    run = subprocess.run([sys.executable, SCRIPT] + args,
                         capture_output=True, text=True, cwd=REPO,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    hits = parse_hits(run.stdout)
    assert [h['rank'] for h in hits] == [1, 2, 3]
    sims = [h['similarity'] for h in hits]
    assert sims == sorted(sims, reverse=True)
    assert all(osp.basename(h['img_path']) != osp.basename(query)
               for h in hits)
    assert osp.isfile(index)
    # the picture: the query and three hits at height 240
    picture = cv2.imread(out_file)
    expected = draw_search_result(query, box, hits, height=240)
    assert picture.shape == expected.shape
    assert f'picture ({expected.shape[1]}x{expected.shape[0]})' in run.stdout

    # a second run reuses the index (no --gallery needed)
    out2 = str(tmp_path / 'again.png')
    demo_main(args[:args.index('--gallery')] +
              args[args.index('--topk'):-1] + [out2])
    printed = capsys.readouterr().out
    assert f'gallery index loaded from {index}' in printed
    again = parse_hits(printed)
    assert [(h['img_path'], h['box']) for h in again] == \
        [(h['img_path'], h['box']) for h in hits]
    assert cv2.imread(out2).shape == expected.shape

    # another model (as initialised, no checkpoint) refuses the index
    with pytest.raises(SystemExit, match='another model'):
        demo_main(args[:2] + args[4:args.index('--gallery')] +
                  args[args.index('--topk'):])


def test_search_demo_errors(setup, tmp_path):
    base = ['--config', setup['config'], '--out', str(tmp_path / 'r.jpg')]
    missing = osp.join(setup['root'], 'frames', 'missing.jpg')
    with pytest.raises(SystemExit, match='missing.jpg'):
        demo_main(base + ['--query', missing, '--query-box', '1', '1', '9',
                          '20', '--gallery', setup['frames'][0]])
    with pytest.raises(SystemExit, match='not inside the image'):
        demo_main(base + ['--query', setup['query'], '--query-box', '1', '1',
                          '300', '20', '--gallery', setup['frames'][0]])
    with pytest.raises(SystemExit, match='give --gallery'):
        demo_main(base + ['--query', setup['query'], '--query-box',
                          *map(str, setup['box'])])

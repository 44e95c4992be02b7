# Copyright (c) OpenMMLab. All rights reserved.
"""Every sub-package of mmps imports alone, in a fresh interpreter, and no
lower layer imports a higher one."""
import ast
import os.path as osp
import pkgutil
import subprocess
import sys

import pytest

import mmps

PACKAGE_DIR = osp.dirname(mmps.__file__)
SUBPACKAGES = sorted(
    f'mmps.{m.name}' for m in pkgutil.iter_modules([PACKAGE_DIR]))
#: ``register_all_modules`` imports every component (inside the function, as
#: mmdet's does): the one module allowed to reach up
ENTRY_POINTS = {'utils/setup_env.py'}
#: the layers, lowest first: a module may import its own layer and lower ones
LAYERS = [
    {'registry', 'version', 'utils', 'structures'},
    {'datasets', 'evaluation', 'visualization'},
    {'models'},
    {'engine', 'testing'},
    {'apis'},
]


def _layer(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise AssertionError(f'mmps.{name} is in no layer of this test')


@pytest.mark.parametrize('name', SUBPACKAGES)
def test_subpackage_imports_alone(name):
    out = subprocess.run([sys.executable, '-c', f'import {name}'],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]


def _mmps_imports(path: str):
    """(line, imported mmps sub-package) of a module, module level and
    lazy imports alike."""
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.level == 0 and node.module.startswith('mmps.'):
            yield node.lineno, node.module.split('.')[1]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('mmps.'):
                    yield node.lineno, alias.name.split('.')[1]


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = []
    for sub in SUBPACKAGES + ['mmps.registry']:
        name = sub.split('.')[1]
        root = osp.join(PACKAGE_DIR, name)
        files = [root + '.py'] if osp.isfile(root + '.py') else [
            osp.join(d, f) for d, _, fs in __import__('os').walk(root)
            for f in fs if f.endswith('.py')
        ]
        for path in files:
            if osp.relpath(path, PACKAGE_DIR) in ENTRY_POINTS:
                continue
            for line, target in _mmps_imports(path):
                if _layer(target) > _layer(name):
                    upward.append(f'{osp.relpath(path, PACKAGE_DIR)}:{line} '
                                  f'imports mmps.{target}')
    assert not upward, '\n'.join(upward)

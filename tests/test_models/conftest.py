# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
from mmengine import DefaultScope

from mmps.utils import register_all_modules


@pytest.fixture(scope='session', autouse=True)
def _registered():
    register_all_modules()
    with DefaultScope.overwrite_default_scope('mmps'):
        yield


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)

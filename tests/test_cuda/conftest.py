# Copyright (c) OpenMMLab. All rights reserved.
import pytest
from mmengine import DefaultScope

from mmps.datasets.synthetic import make_synthetic_prw
from mmps.utils import register_all_modules

from .utils import FRAME_SIZE


@pytest.fixture(scope='session', autouse=True)
def _registered():
    register_all_modules()
    with DefaultScope.overwrite_default_scope('mmps'):
        yield


@pytest.fixture(scope='session')
def reference_prw_root(tmp_path_factory):
    """A small synthetic PRW-format set with 1920x1080 frames."""
    return make_synthetic_prw(
        str(tmp_path_factory.mktemp('prw_1080p')), seed=0, num_images=8,
        num_ids=6, image_size=FRAME_SIZE).root

# Copyright (c) OpenMMLab. All rights reserved.
import pytest

from mmps.datasets.synthetic import make_synthetic_cuhk_sysu, make_synthetic_prw
from mmps.utils import register_all_modules


@pytest.fixture(scope='session', autouse=True)
def _registered():
    register_all_modules()


@pytest.fixture(scope='session')
def cuhk_truth(tmp_path_factory):
    """A small rendered CUHK-SYSU-format root and the generator's truth."""
    root = tmp_path_factory.mktemp('cuhk-sysu')
    return make_synthetic_cuhk_sysu(
        str(root), seed=3, num_images=36, num_ids=12, image_size=(120, 200))


@pytest.fixture(scope='session')
def prw_truth(tmp_path_factory):
    """A small rendered PRW-format root and the generator's truth."""
    root = tmp_path_factory.mktemp('prw')
    return make_synthetic_prw(
        str(root), seed=5, num_images=36, num_ids=12, image_size=(120, 200))

# Copyright (c) OpenMMLab. All rights reserved.
import os

import pytest


@pytest.fixture(scope='session', autouse=True)
def _annotation_cache(tmp_path_factory):
    """The native readers' cache (``mmps.datasets.native.cache``) in a
    temporary folder, for this process and the tools it starts."""
    old = os.environ.get('MMPS_CACHE_DIR')
    os.environ['MMPS_CACHE_DIR'] = str(tmp_path_factory.mktemp('mmps-cache'))
    yield
    if old is None:
        os.environ.pop('MMPS_CACHE_DIR', None)
    else:
        os.environ['MMPS_CACHE_DIR'] = old

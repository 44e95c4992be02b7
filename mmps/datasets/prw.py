# Copyright (c) OpenMMLab. All rights reserved.
from typing import List

from mmps.registry import DATASETS
from .base_ps_dataset import BasePersonSearchDataset
from .native import IMG_SUBDIRS
from .native.prw import PRW_BOX_KEYS, PRWReader, prw_camera_id

__all__ = ['PRW_BOX_KEYS', 'PRWDataset', 'prw_camera_id']


@DATASETS.register_module()
class PRWDataset(BasePersonSearchDataset):
    """PRW read from its native files (no conversion step).

    Layout under ``data_root``::

        frames/c<cam>s<seq>_<frame>.jpg
        annotations/<frame>.jpg.mat   box_new (or anno_file / anno_previous):
                                      N x 5 [pid, x, y, w, h], pid -2 unlabeled
        frame_train.mat               img_index_train: frame names without .jpg
        frame_test.mat                img_index_test
        query_info.txt                'pid x y w h frame' per line (CRLF or LF)

    The test split lists the test frames as gallery entries and the queries
    of ``query_info.txt`` in line order. Camera ids come from frame names.
    The files are read by :class:`mmps.datasets.native.PRWReader` (cached;
    the offline evaluator reads them there too).

    Args:
        data_root (str): Dataset root.
        split (str): ``'train'`` or ``'test'``.
        **kwargs: See :class:`BasePersonSearchDataset`.
    """

    img_subdir = IMG_SUBDIRS['prw']
    synthetic_format = 'prw'

    def load_train_records(self) -> List[dict]:
        return PRWReader(self.data_root).load_train_records()

    def load_test_records(self):
        return PRWReader(self.data_root).load_test_records()

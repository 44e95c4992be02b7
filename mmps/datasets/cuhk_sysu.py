# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional

from mmps.registry import DATASETS
from .base_ps_dataset import BasePersonSearchDataset
from .native import IMG_SUBDIRS
from .native.cuhk_sysu import (CUHK_SYSU_GALLERY_SIZES, CUHKSYSUReader,
                               check_gallery_size)

__all__ = ['CUHK_SYSU_GALLERY_SIZES', 'CUHKSYSUDataset']


@DATASETS.register_module()
class CUHKSYSUDataset(BasePersonSearchDataset):
    """CUHK-SYSU read from its native files (no conversion step).

    The native layout (``Image/SSM/``, ``annotation/Images.mat``,
    ``pool.mat``, ``test/train_test/Train.mat`` and ``TestG<S>.mat``) and how
    its splits are formed: :class:`mmps.datasets.native.CUHKSYSUReader`,
    which reads the files (cached; the offline evaluator reads them there
    too).

    Args:
        data_root (str): Dataset root.
        split (str): ``'train'`` or ``'test'``.
        gallery_size (int, optional): 50, 100, 500, 1000, 2000 or 4000 for the
            ``TestG<S>`` protocol; ``None`` or -1 for the full set (every test
            image but the query's own). Defaults to 100.
        **kwargs: See :class:`BasePersonSearchDataset`.
    """

    img_subdir = IMG_SUBDIRS['cuhk-sysu']
    synthetic_format = 'cuhk-sysu'

    def __init__(self, data_root: str, split: str = 'train',
                 gallery_size: Optional[int] = 100, **kwargs) -> None:
        self.gallery_size = check_gallery_size(gallery_size)
        super().__init__(data_root=data_root, split=split, **kwargs)

    @property
    def reader(self) -> CUHKSYSUReader:
        """The reader of this root's native files."""
        return CUHKSYSUReader(self.data_root, self.gallery_size)

    def protocol_file(self) -> tuple:
        """(path, variable) of the protocol file this dataset reads."""
        return self.reader.protocol_file()

    def load_train_records(self) -> List[dict]:
        reader = self.reader
        records = reader.load_train_records()
        self._log_reader_warnings(reader.warnings)
        return records

    def load_test_records(self):
        reader = self.reader
        records = reader.load_test_records()
        self._log_reader_warnings(reader.warnings)
        return records

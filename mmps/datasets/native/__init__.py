# Copyright (c) OpenMMLab. All rights reserved.
"""The native annotation files of person search datasets, read into plain
records with numpy and scipy only (no torch, mmengine or mmdet).

* :mod:`.matfile`: a fast MAT-5 reader (streams the CUHK-SYSU protocol
  files; scipy for anything outside its subset).
* :mod:`.cuhk_sysu`, :mod:`.prw`: the readers of each dataset's files.
* :mod:`.cache`: the records cached by the files' content.
* :mod:`.entries`: records -> data-list entries (the dataset classes and the
  offline evaluator share it).
* :func:`load_test_entries`: the test split's entries of a root.
"""
import os.path as osp
from typing import List, Optional, Tuple

from ..native_io import AnnotationError
from .cuhk_sysu import (CUHK_SYSU_GALLERY_SIZES, CUHKSYSUReader,
                        check_gallery_size)
from .entries import EntryBuilder
from .prw import PRW_BOX_KEYS, PRWReader, prw_camera_id

__all__ = [
    'AnnotationError', 'CUHK_SYSU_GALLERY_SIZES', 'CUHKSYSUReader',
    'EntryBuilder', 'IMG_SUBDIRS', 'PRW_BOX_KEYS', 'PRWReader',
    'check_gallery_size', 'prw_camera_id', 'load_test_entries'
]

#: the image folder of each dataset, relative to its root
IMG_SUBDIRS = {'cuhk-sysu': osp.join('Image', 'SSM'), 'prw': 'frames'}


def load_test_entries(dataset: str, data_root: str,
                      gallery_size: Optional[int] = 100
                      ) -> Tuple[List[dict], List[str]]:
    """The test-split entries of a root, as the dataset class builds them
    with ``check_images=False``.

    Args:
        dataset (str): ``'cuhk-sysu'`` or ``'prw'``.
        data_root (str): Dataset root.
        gallery_size (int, optional): CUHK-SYSU gallery size (None or -1:
            the full set).

    Returns:
        tuple[list[dict], list[str]]: The entries (gallery images, then
        queries) and the readers' warnings.
    """
    if not osp.isdir(data_root):
        raise AnnotationError(f'{data_root}: dataset root not found')
    if dataset == 'cuhk-sysu':
        reader = CUHKSYSUReader(data_root, check_gallery_size(gallery_size))
    elif dataset == 'prw':
        reader = PRWReader(data_root)
    else:
        raise ValueError(f"dataset must be 'cuhk-sysu' or 'prw', got "
                         f'{dataset!r}')
    gallery, queries = reader.load_test_records()
    builder = EntryBuilder(data_root,
                           osp.join(data_root, IMG_SUBDIRS[dataset]), 'test',
                           check_images=False)
    return builder.build(gallery, queries), reader.warnings

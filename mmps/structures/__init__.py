# Copyright (c) OpenMMLab. All rights reserved.
from .gallery_index import (INDEX_FIELDS, INDEX_FORMAT, GalleryIndex,
                            GalleryIndexError, SearchHit)

__all__ = [
    'GalleryIndex', 'GalleryIndexError', 'SearchHit', 'INDEX_FIELDS',
    'INDEX_FORMAT'
]

# Copyright (c) OpenMMLab. All rights reserved.
from mmps.structures import GalleryIndex, GalleryIndexError, SearchHit
from .person_searcher import PersonSearcher, list_gallery_images

__all__ = [
    'PersonSearcher', 'GalleryIndex', 'GalleryIndexError', 'SearchHit',
    'list_gallery_images'
]

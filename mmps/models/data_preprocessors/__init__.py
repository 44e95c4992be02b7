# Copyright (c) OpenMMLab. All rights reserved.
from .person_search_data_preprocessor import PersonSearchDataPreprocessor

__all__ = ['PersonSearchDataPreprocessor']

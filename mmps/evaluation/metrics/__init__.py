# Copyright (c) OpenMMLab. All rights reserved.
from .person_search_metric import (PersonSearchMetric,
                                   format_person_search_table)

__all__ = ['PersonSearchMetric', 'format_person_search_table']

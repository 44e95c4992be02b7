# Copyright (c) OpenMMLab. All rights reserved.
from .person_search import (PersonSearchProtocol, eval_detection, eval_search,
                            evaluate_person_search, pairwise_iou,
                            search_iou_thresholds)
from .results_io import (SEARCH_RESULT_FIELDS, SearchResultsError,
                         align_search_results, load_search_results,
                         save_search_results)
from .search_protocols import (SEARCH_PROTOCOLS, best_iou_query_feats,
                               check_search_protocols, protocol_features,
                               score_weighted_feats)

__all__ = [
    'PersonSearchProtocol', 'eval_search', 'eval_detection',
    'evaluate_person_search', 'pairwise_iou', 'search_iou_thresholds',
    'SEARCH_RESULT_FIELDS', 'SearchResultsError', 'save_search_results',
    'load_search_results', 'align_search_results', 'SEARCH_PROTOCOLS',
    'best_iou_query_feats', 'score_weighted_feats', 'protocol_features',
    'check_search_protocols'
]

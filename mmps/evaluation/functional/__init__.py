# Copyright (c) OpenMMLab. All rights reserved.
"""Person search evaluation in numpy (no torch / mmengine import).

* :mod:`.protocol`: the test split (gallery and query records, the flat
  :class:`PersonSearchProtocol`, built from records or dataset entries).
* :mod:`.detection`: the box rules and the detection recall / AP.
* :mod:`.search`: search mAP / top-k and per-query rankings.
* :mod:`.search_protocols`: the query and gallery features of each search
  protocol (``'gt_box'``, ``'best_iou_det'``).
* :mod:`.cbgm`: SeqNet's context bipartite graph matching (CBGM).
* :mod:`.results_io`: search results files.
"""
from .cbgm import (CBGM, CBGM_DEFAULTS, QueryContext, build_query_context,
                   cbgm_dataset, context_match)
from .detection import eval_detection, pairwise_iou, search_iou_thresholds
from .protocol import GalleryRecord, PersonSearchProtocol, QueryRecord
from .results_io import (SEARCH_CONTEXT_FIELDS, SEARCH_RESULT_FIELDS,
                         SearchResultsError, align_search_results,
                         load_search_results, save_search_results,
                         search_results_context)
from .search import (QueryRanking, eval_search, evaluate_person_search,
                     rank_search)
from .search_protocols import (SEARCH_PROTOCOLS, best_iou_query_feats,
                               check_search_protocols, protocol_features,
                               score_weighted_feats)

__all__ = [
    'PersonSearchProtocol', 'GalleryRecord', 'QueryRecord', 'eval_search',
    'eval_detection', 'evaluate_person_search', 'rank_search',
    'QueryRanking', 'pairwise_iou', 'search_iou_thresholds',
    'SEARCH_RESULT_FIELDS', 'SearchResultsError', 'save_search_results',
    'load_search_results', 'align_search_results', 'SEARCH_PROTOCOLS',
    'best_iou_query_feats', 'score_weighted_feats', 'protocol_features',
    'check_search_protocols', 'CBGM', 'CBGM_DEFAULTS', 'QueryContext',
    'build_query_context', 'cbgm_dataset', 'context_match',
    'SEARCH_CONTEXT_FIELDS', 'search_results_context'
]

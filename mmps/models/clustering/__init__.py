# Copyright (c) OpenMMLab. All rights reserved.
from .jaccard import k_reciprocal_jaccard
from .knn import exact_knn
from .pseudo_labels import (apply_scene_constraint, cluster_quality,
                            dbscan_labels, generate_pseudo_labels,
                            reliability_refine)

__all__ = [
    'exact_knn', 'k_reciprocal_jaccard', 'dbscan_labels',
    'apply_scene_constraint', 'reliability_refine', 'generate_pseudo_labels',
    'cluster_quality'
]

# Copyright (c) OpenMMLab. All rights reserved.
from .batch_hard_triplet_with_background_loss import \
    BatchHardTripletWithBackgroundLoss
from .cluster_memory_contrast_loss import ClusterMemoryContrastLoss
from .dense_similarity_kl_loss import DenseSimilarityKLLoss
from .many_to_one_loss import ManyToOneLoss

__all__ = [
    'BatchHardTripletWithBackgroundLoss', 'ClusterMemoryContrastLoss',
    'DenseSimilarityKLLoss', 'ManyToOneLoss'
]

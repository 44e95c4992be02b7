# Copyright (c) OpenMMLab. All rights reserved.
from .instance_memory import InstanceMemory, cluster_centroids

__all__ = ['InstanceMemory', 'cluster_centroids']

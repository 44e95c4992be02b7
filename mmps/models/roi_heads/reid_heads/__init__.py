# Copyright (c) OpenMMLab. All rights reserved.
from .reid_embedding_head import ReIDEmbeddingHead

__all__ = ['ReIDEmbeddingHead']

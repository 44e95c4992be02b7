# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch
from mmdet.structures import SampleList
from torch import Tensor

from mmps.registry import MODELS
from .person_search_detector import PersonSearchDetector


@MODELS.register_module()
class DICL(PersonSearchDetector):
    """DICL.

    Implementation of `Deep Intra-Image Contrastive Learning for Weakly
    Supervised One-Step Person Search <https://arxiv.org/abs/2302.04607>`_.
    The settings of the reference configs follow the authors' code:
    `<https://github.com/jiabeiwangTJU/DICL>`_ (every difference is listed
    in ``configs/dicl/README.md``; the method, step by step, in
    ``docs/method.md``).

    The DICL detector (R50-C4 with the C4/C5 fusion neck, a head DCN, two
    box towers and a 256-d embedding, see ``configs/_base_/models/
    dicl_r50-c4.py``) and its inference: fused scene + instance features
    (:class:`PersonSearchDetector`). Its weakly supervised re-id objectives
    plug into :meth:`embed_gt_instances` (the Siamese instance branch) and
    :meth:`DICLRoIHead.loss_reid` (many-to-one, dense, memory-contrast and
    triplet losses, memory update); the memory is filled and labelled by
    ``InstanceMemoryInitHook`` and ``PseudoLabelHook``.
    """

    def embed_gt_instances(self, batch_inputs: Tensor,
                           batch_data_samples: SampleList) -> Optional[Tensor]:
        """Instance-branch embeddings ``g`` of the GT boxes of the batch.

        The views come from the pipeline (``InstanceViews``, packed as
        ``gt_instances.crops`` and normalised by
        ``PersonSearchDataPreprocessor``): crops of the augmented scene cut
        *before* ``BoxOcclusion`` masks it. Without them (no Siamese
        transforms in the pipeline) there is no instance branch: None.

        Args:
            batch_inputs (Tensor): (B, C, H, W) preprocessed inputs.
            batch_data_samples (list[DetDataSample]): The batch.

        Returns:
            Tensor or None: (G, D) embeddings, image by image in GT order.
        """
        with_crops = ['crops' in s.gt_instances for s in batch_data_samples]
        if not any(with_crops):
            return None
        if not all(with_crops):
            raise ValueError('some samples of the batch have instance views '
                             '(gt_instances.crops) and others not')
        crops = torch.cat([s.gt_instances.crops for s in batch_data_samples])
        return self.embed_crops(crops.to(batch_inputs))

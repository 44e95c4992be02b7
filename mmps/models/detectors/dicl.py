# Copyright (c) OpenMMLab. All rights reserved.
from mmps.registry import MODELS
from .person_search_detector import PersonSearchDetector


@MODELS.register_module()
class DICL(PersonSearchDetector):
    """DICL: Deep Intra-Image Contrastive Learning for weakly supervised
    one-step person search.

    The DICL detector (R50-C4 with the C4/C5 fusion neck, a head DCN, two
    box towers and a 256-d embedding, see ``configs/_base_/models/
    dicl_r50-c4.py``) and its inference: fused scene + instance features
    (:class:`PersonSearchDetector`). Its weakly supervised re-id objectives
    (many-to-one, dense and memory-contrast losses on the Siamese instance
    branch) plug into :meth:`embed_gt_instances` and the RoI head's
    ``loss_reid``; until they do, training optimises the detection losses.
    """

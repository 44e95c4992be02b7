# Copyright (c) OpenMMLab. All rights reserved.
"""Model outputs of a test split, as the metric receives them."""
import numpy as np
import torch


def samples_of(infos, dets, feats, qfeats):
    """Model outputs for test-split entries: per gallery image ``img_id``
    its ``dets[img_id]`` (n, 5) and ``feats[img_id]`` (n, D), per query
    ``qfeats[query_id]``."""
    samples = []
    for info in infos:
        inst = info['instances']
        gt = dict(
            bboxes=torch.tensor([i['bbox'] for i in inst],
                                dtype=torch.float32).reshape(-1, 4),
            person_ids=torch.tensor([i['person_id'] for i in inst],
                                    dtype=torch.long),
            labels=torch.zeros(len(inst), dtype=torch.long))
        s = {k: v for k, v in info.items() if k != 'instances'}
        s['gt_instances'] = gt
        if info['is_query']:
            s['pred_instances'] = dict(
                feats=torch.from_numpy(qfeats[info['query_id']][None]))
        else:
            g = info['img_id']
            d = torch.tensor(dets[g], dtype=torch.float32).reshape(-1, 5)
            s['pred_instances'] = dict(
                bboxes=d[:, :4], scores=d[:, 4],
                feats=torch.tensor(np.asarray(feats[g]),
                                   dtype=torch.float32).reshape(
                                       len(d), qfeats.shape[1]),
                labels=torch.zeros(len(d), dtype=torch.long))
        samples.append(s)
    return samples

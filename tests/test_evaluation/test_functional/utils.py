# Copyright (c) OpenMMLab. All rights reserved.
"""Helpers of the evaluation tests: test-split entries, flat detections,
hand-made and random cases, and a straightforward per-query reference (the
field's ``eval_func.py`` rules)."""
import numpy as np
from sklearn.metrics import average_precision_score

from mmps.evaluation.functional import PersonSearchProtocol, eval_search


# -- helpers ------------------------------------------------------------------
def make_infos(images, queries):
    """Test-split entries as BasePersonSearchDataset writes them.

    images: list of dict(boxes, pids, cam); queries: list of dict(pid, img,
    cam, box, gallery (list of gallery indices or None)).
    """
    infos = []
    for i, im in enumerate(images):
        infos.append(
            dict(
                img_id=i,
                img_name=f'img{i:04d}.jpg',
                cam_id=im.get('cam', 0),
                is_query=False,
                instances=[
                    dict(bbox=list(map(float, b)), person_id=int(p))
                    for b, p in zip(im['boxes'], im['pids'])
                ]))
    for q, qu in enumerate(queries):
        gal = qu.get('gallery')
        infos.append(
            dict(
                img_id=len(images) + q,
                img_name=f'img{qu["img"]:04d}.jpg',
                cam_id=qu.get('cam', 0),
                is_query=True,
                query_id=q,
                query_img_index=qu['img'],
                gallery_img_ids=None if gal is None else np.array(
                    gal, np.int64),
                instances=[
                    dict(
                        bbox=list(map(float, qu.get('box', [0, 0, 1, 1]))),
                        person_id=qu['pid'])
                ]))
    return infos


def flat_dets(per_img_dets, per_img_feats=None, order=None):
    """Per-image lists -> det_img, dets, feats (images in ``order``)."""
    order = range(len(per_img_dets)) if order is None else order
    det_img, dets, feats = [], [], []
    dim = max((np.shape(f)[-1] for f in per_img_feats or [] if len(f)),
              default=2)
    for g in order:
        d = np.asarray(per_img_dets[g], np.float64).reshape(-1, 5)
        det_img += [g] * len(d)
        dets.append(d)
        if per_img_feats is not None:
            feats.append(np.asarray(per_img_feats[g]).reshape(len(d), dim))
    det_img = np.array(det_img, np.int64)
    dets = np.concatenate(dets) if dets else np.zeros((0, 5))
    if per_img_feats is None:
        return det_img, dets
    return det_img, dets, np.concatenate(feats)

# -- the reference: the field's code, loop by loop ----------------------------
def _iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) \
        - inter
    return inter * 1.0 / union


def ref_search(images, queries, dets, feats, qfeats, det_thresh=0.5,
               cross_camera=False, topk=(1, 5, 10), rescore=None):
    """``rescore(q, kept, name2sim)``: revise the similarities of query
    ``q`` (``name2sim``: gallery image -> similarities, in gallery order)
    before the match rule, in place (SeqNet's CBGM)."""
    kept = {}
    for g, (d, f) in enumerate(zip(dets, feats)):
        d = np.asarray(d, np.float64).reshape(-1, 5)
        inds = np.where(d[:, 4] >= det_thresh)[0]
        if len(inds):
            kept[g] = (d[inds], np.asarray(f)[inds])
    aps, accs = [], []
    for q, qu in enumerate(queries):
        feat_q = qfeats[q]
        if qu.get('gallery') is not None:
            gallery = list(qu['gallery'])
        else:
            gallery = [g for g in range(len(images)) if g != qu['img']]
        if cross_camera:
            gallery = [g for g in gallery if images[g]['cam'] != qu['cam']]
        y_true, y_score = [], []
        count_gt = count_tp = 0
        name2sim = {g: kept[g][1].dot(feat_q).ravel()
                    for g in gallery if g in kept}
        if rescore is not None:
            rescore(q, kept, name2sim)
        for g in gallery:
            pids = np.asarray(images[g]['pids'])
            gt = None
            if qu['pid'] >= 0 and (pids == qu['pid']).any():
                gt = np.asarray(images[g]['boxes'],
                                np.float64)[pids == qu['pid']][0]
                count_gt += 1
            if g not in kept:
                continue
            det = kept[g][0]
            sim = name2sim[g]
            label = np.zeros(len(sim), np.int32)
            if gt is not None:
                w, h = gt[2] - gt[0], gt[3] - gt[1]
                iou_thresh = min(0.5, (w * h * 1.0) / ((w + 10) * (h + 10)))
                inds = np.argsort(sim)[::-1]
                sim, det = sim[inds], det[inds]
                for j, roi in enumerate(det[:, :4]):
                    if _iou(roi, gt) >= iou_thresh:
                        label[j] = 1
                        count_tp += 1
                        break
            y_true.extend(label)
            y_score.extend(sim)
        y_true, y_score = np.asarray(y_true), np.asarray(y_score)
        if count_tp == 0:
            aps.append(0.)
        else:
            aps.append(
                average_precision_score(y_true, y_score) * count_tp /
                count_gt)
        ranks = [(y_score >= s).sum() for s in y_score[y_true == 1]]
        accs.append([any(r <= k for r in ranks) for k in topk])
    out = dict(mAP=float(np.mean(aps)) if aps else 0.)
    accs = np.array(accs, float).reshape(-1, len(topk))
    for j, k in enumerate(topk):
        out[f'top-{k}'] = float(accs[:, j].mean()) if len(accs) else 0.
    out['aps'] = np.array(aps)
    return out


def ref_detection(images, dets, det_thresh=0.5, iou_thresh=0.5,
                  labeled_only=False):
    y_true, y_score = [], []
    count_gt = count_tp = 0
    for im, det in zip(images, dets):
        gt_boxes = np.asarray(im['boxes'], np.float64).reshape(-1, 4)
        if labeled_only:
            inds = np.where(np.asarray(im['pids']) >= 0)[0]
            if len(inds) == 0:
                continue
            gt_boxes = gt_boxes[inds]
        num_gt = gt_boxes.shape[0]
        det = np.asarray(det, np.float64).reshape(-1, 5)
        det = det[det[:, 4] >= det_thresh]
        num_det = det.shape[0]
        if num_det == 0:
            count_gt += num_gt
            continue
        if num_gt == 0:  # the reference crashes here; all negatives
            y_score.extend(det[:, 4])
            y_true.extend([False] * num_det)
            continue
        ious = np.zeros((num_gt, num_det), dtype=np.float32)
        for i in range(num_gt):
            for j in range(num_det):
                ious[i, j] = _iou(gt_boxes[i], det[j, :4])
        tfmat = ious >= iou_thresh
        for j in range(num_det):
            largest_ind = np.argmax(ious[:, j])
            for i in range(num_gt):
                if i != largest_ind:
                    tfmat[i, j] = False
        for i in range(num_gt):
            largest_ind = np.argmax(ious[i, :])
            for j in range(num_det):
                if j != largest_ind:
                    tfmat[i, j] = False
        for j in range(num_det):
            y_score.append(det[j, -1])
            y_true.append(tfmat[:, j].any())
        count_tp += tfmat.sum()
        count_gt += num_gt
    recall = count_tp / count_gt if count_gt else 0.
    ap = average_precision_score(y_true, y_score) * recall \
        if count_tp else 0.
    return dict(recall=recall, ap=ap)

# -- tiny cases, values by hand -----------------------------------------------
BIG = [0, 0, 100, 200]  # w, h large: IoU threshold 0.5


def unit(v):
    """A 2-d feature whose dot product with e0 is ``v``."""
    return [v, np.sqrt(max(0., 1 - v * v))]


def basic_case():
    """Query pid 7 from image 0; targets in images 1 and 2 (see below)."""
    images = [
        dict(boxes=[BIG], pids=[7], cam=1),  # the query's own image
        dict(boxes=[BIG, [200, 0, 300, 200]], pids=[7, 3], cam=2),
        dict(boxes=[[50, 50, 150, 250]], pids=[7], cam=1),
        dict(boxes=[[0, 0, 80, 160]], pids=[4], cam=2),
    ]
    dets = [
        [BIG + [0.9]],  # own image: never in the gallery
        [BIG + [0.9], [200, 0, 300, 200, 0.9]],
        [[50, 50, 150, 250, 0.9], [400, 400, 500, 600, 0.9]],
        [[0, 0, 80, 160, 0.9], [0, 0, 80, 160, 0.4]],
    ]
    sims = [[1.0], [0.8, 0.9], [0.5, 0.7], [0.6, 0.95]]
    feats = [[unit(s) for s in row] for row in sims]
    queries = [dict(pid=7, img=0, cam=1, box=BIG)]
    return images, queries, dets, feats, np.array([[1., 0.]])


def run(images, queries, dets, feats, qfeats, **kw):
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    det_img, d, f = flat_dets(dets, feats)
    return eval_search(protocol, det_img, d, f, qfeats, **kw)

# -- randomised equality with the reference -----------------------------------
def random_case(seed, listed, num_images=40, num_ids=8, dim=8,
                quantised=False):
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(num_ids, dim))
    images, dets, feats = [], [], []
    for g in range(num_images):
        n = rng.integers(0, 5)
        pids = rng.integers(-1, num_ids, n)  # -1: unlabeled
        if n >= 2 and rng.random() < 0.1:
            pids[1] = pids[0]  # an identity twice in one image
        x = rng.uniform(0, 400, n)
        y = rng.uniform(0, 200, n)
        w = np.where(rng.random(n) < 0.3, rng.uniform(4, 20, n),
                     rng.uniform(20, 100, n))  # small people too
        h = w * rng.uniform(1.5, 3, n)
        boxes = np.stack([x, y, x + w, y + h], 1) if n else np.zeros((0, 4))
        images.append(dict(boxes=boxes, pids=pids, cam=int(rng.integers(3))))
        d, f = [], []
        for b, p in zip(boxes, pids):
            for _ in range(rng.choice([0, 1, 1, 2])):  # missed / found / twice
                bw, bh = b[2] - b[0], b[3] - b[1]
                jit = rng.normal(0, 0.12, 4) * [bw, bh, bw, bh]
                d.append(np.r_[b + jit, rng.uniform(0.2, 1)])
                base = protos[p] if p >= 0 else rng.normal(size=dim)
                f.append(base + rng.normal(0, 1.0, dim))
        for _ in range(rng.integers(0, 3)):  # spurious
            x0, y0 = rng.uniform(0, 400), rng.uniform(0, 200)
            d.append([x0, y0, x0 + rng.uniform(5, 80),
                      y0 + rng.uniform(10, 160), rng.uniform(0.2, 1)])
            f.append(rng.normal(size=dim))
        d = np.array(d, np.float64).reshape(-1, 5)
        f = np.array(f, np.float64).reshape(-1, dim)
        if quantised:  # exact float arithmetic, many ties
            f = np.round(f * 2) / 2
            d[:, 4] = np.round(d[:, 4] * 5) / 5
        dets.append(d)
        # float64 unless exact: the reference's per-image products and the
        # batched ones then give the same order
        feats.append(f.astype(np.float32 if quantised else np.float64))
    queries, qfeats = [], []
    for g, im in enumerate(images):
        for b, p in zip(im['boxes'], im['pids']):
            if p < 0 or rng.random() < 0.4:
                continue
            qu = dict(pid=int(p), img=g, cam=im['cam'], box=b)
            if listed:
                others = [i for i in range(num_images) if i != g]
                qu['gallery'] = rng.choice(others, 15, replace=False).tolist()
            queries.append(qu)
            qf = protos[p] + rng.normal(0, 0.5, dim)
            if quantised:
                qf = np.round(qf * 2) / 2
            qfeats.append(qf)
    qfeats = np.array(qfeats, np.float32 if quantised else
                      np.float64).reshape(-1, dim)
    return images, queries, dets, feats, qfeats

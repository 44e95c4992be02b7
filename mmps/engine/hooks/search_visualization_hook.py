# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.utils import mkdir_or_exist

from mmps.evaluation.functional import pairwise_iou, search_iou_thresholds
from mmps.registry import HOOKS
from mmps.visualization import draw_search_result


def _numpy(x, dtype=np.float32) -> np.ndarray:
    if hasattr(x, 'tensor'):  # mmdet boxes
        x = x.tensor
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype)


@HOOKS.register_module()
class SearchVisualizationHook(Hook):
    """Draw the ranked results of the first test queries.

    During the test loop, it keeps every gallery image's path, detections
    (score ``>= det_thresh``), features and ground truth, and the box,
    feature and identity of the queries ``query_id < num_queries``. After
    the loop the records of all ranks are gathered and, on rank 0, each of
    those queries is searched in its gallery (the query's
    ``gallery_img_ids``, else every gallery image but its own, as the
    evaluation protocol does) and its top-k hits are drawn with
    :func:`mmps.visualization.draw_search_result` into
    ``out_dir/query_XXXX.jpg`` (the query id). A hit is green when it
    passes the protocol's match rule (IoU ``>= min(0.5, wh / ((w + 10)(h +
    10)))`` with a ground-truth box of the query's identity in that image),
    red otherwise; amber when the query's identity is unknown.

    ``tools/test.py --show-dir DIR [--show-queries N]`` adds this hook.

    Args:
        out_dir (str): Folder of the pictures (created).
        num_queries (int): Draw the queries with ``query_id`` below it.
            Defaults to 20.
        topk (int): Hits per picture. Defaults to 10.
        det_thresh (float): Minimum detection score (the protocol's).
            Defaults to 0.5.
        height (int): Height of the images in a picture. Defaults to 240.
    """

    priority = 'LOW'

    def __init__(self,
                 out_dir: str,
                 num_queries: int = 20,
                 topk: int = 10,
                 det_thresh: float = 0.5,
                 height: int = 240) -> None:
        self.out_dir = out_dir
        self.num_queries = int(num_queries)
        self.topk = int(topk)
        self.det_thresh = float(det_thresh)
        self.height = int(height)
        self._gallery: List[dict] = []
        self._queries: List[dict] = []

    def before_test_epoch(self, runner) -> None:
        self._gallery, self._queries = [], []

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        """Keep what the pictures need of the batch's samples."""
        if self.num_queries <= 0:
            return
        for sample in outputs or []:
            meta = sample.metainfo
            pred = sample.pred_instances
            gt = sample.get('gt_instances', None)
            if meta.get('is_query', False):
                if int(meta['query_id']) >= self.num_queries:
                    continue
                pids = _numpy(gt.person_ids, np.int64) if gt is not None \
                    and 'person_ids' in gt else np.full(1, -1)
                ids = meta.get('gallery_img_ids', None)
                self._queries.append(
                    dict(
                        query_id=int(meta['query_id']),
                        img_path=meta['img_path'],
                        box=_numpy(pred.bboxes).reshape(-1, 4)[0],
                        feat=_numpy(pred.feats).reshape(-1),
                        person_id=int(pids.reshape(-1)[0]),
                        query_img_index=int(meta.get('query_img_index', -1)),
                        gallery_img_ids=None if ids is None else _numpy(
                            ids, np.int64).reshape(-1)))
                continue
            scores = _numpy(pred.scores).reshape(-1)
            keep = scores >= self.det_thresh
            self._gallery.append(
                dict(
                    img_id=int(meta['img_id']),
                    img_path=meta['img_path'],
                    boxes=_numpy(pred.bboxes).reshape(-1, 4)[keep],
                    scores=scores[keep],
                    feats=_numpy(pred.feats)[keep],
                    gt_boxes=np.zeros((0, 4), np.float32) if gt is None else
                    _numpy(gt.bboxes).reshape(-1, 4),
                    gt_pids=np.zeros(0, np.int64) if gt is None or
                    'person_ids' not in gt else _numpy(
                        gt.person_ids, np.int64).reshape(-1)))

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Gather the records and draw the pictures on rank 0."""
        if self.num_queries <= 0:
            return
        gallery = [g for part in all_gather_object(self._gallery)
                   for g in part]
        queries = [q for part in all_gather_object(self._queries)
                   for q in part]
        self._gallery, self._queries = [], []
        if not is_main_process():
            return
        written = self.draw(gallery, queries)
        runner.logger.info(f'{written} search result pictures written to '
                           f'{self.out_dir}')

    def draw(self, gallery: List[dict], queries: List[dict]) -> int:
        """Rank and draw the queries' results.

        Args:
            gallery (list[dict]): Gallery records (any order, all ranks).
            queries (list[dict]): Query records.

        Returns:
            int: Number of pictures written.
        """
        from mmps.apis import GalleryIndex  # mmps.apis imports mmps.engine
        gallery = sorted({g['img_id']: g for g in gallery}.values(),
                         key=lambda g: g['img_id'])
        queries = sorted({q['query_id']: q for q in queries}.values(),
                         key=lambda q: q['query_id'])
        if not queries:
            return 0
        pos = {g['img_id']: i for i, g in enumerate(gallery)}
        dim = len(queries[0]['feat'])
        index = GalleryIndex(
            img_paths=[g['img_path'] for g in gallery],
            det_img=np.concatenate(
                [np.full(len(g['scores']), i, np.int64)
                 for i, g in enumerate(gallery)] + [np.zeros(0, np.int64)]),
            boxes=np.concatenate([g['boxes'] for g in gallery] +
                                 [np.zeros((0, 4), np.float32)]),
            scores=np.concatenate([g['scores'] for g in gallery] +
                                  [np.zeros(0, np.float32)]),
            feats=np.concatenate([g['feats'].reshape(-1, dim)
                                  for g in gallery] +
                                 [np.zeros((0, dim), np.float32)]))
        mkdir_or_exist(self.out_dir)
        for q in queries:
            hits, correct = self.rank_query(q, index, gallery, pos)
            draw_search_result(
                q['img_path'],
                q['box'],
                hits,
                correct=correct,
                height=self.height,
                query_label=f'pid {q["person_id"]}'
                if q['person_id'] >= 0 else None,
                out_file=osp.join(self.out_dir,
                                  f'query_{q["query_id"]:04d}.jpg'))
        return len(queries)

    def rank_query(self, query: dict, index, gallery: List[dict],
                   pos: dict) -> tuple:
        """The top-k hits of a query in its gallery and their correctness.

        Args:
            query (dict): Query record.
            index (GalleryIndex): Detections of the gallery records.
            gallery (list[dict]): Gallery records, in index order.
            pos (dict): ``img_id`` -> position in ``gallery``.

        Returns:
            tuple[list[SearchHit], list[bool] | None]: The hits and, when the
            query's identity is known, whether each passes the protocol's
            match rule with a ground-truth box of that identity.
        """
        if query['gallery_img_ids'] is not None:
            imgs = [pos[i] for i in query['gallery_img_ids'].tolist()
                    if i in pos]
        else:
            own = pos.get(query['query_img_index'], -1)
            imgs = [i for i in range(len(gallery)) if i != own]
        hits = index.search(
            query['feat'],
            topk=self.topk,
            det_thresh=self.det_thresh,
            img_indices=imgs)
        if query['person_id'] < 0:
            return hits, None
        correct = []
        for hit in hits:
            g = gallery[hit.img_index]
            gt = g['gt_boxes'][g['gt_pids'] == query['person_id']]
            box = np.repeat(np.asarray(hit.box, np.float64)[None], len(gt), 0)
            correct.append(
                bool(len(gt) and (pairwise_iou(box, gt) >=
                                  search_iou_thresholds(gt)).any()))
        return hits, correct

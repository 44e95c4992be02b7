# Copyright (c) OpenMMLab. All rights reserved.
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement

from mmps.registry import METRICS
from mmps.utils import to_numpy
from ..functional import (CBGM, GalleryRecord, PersonSearchProtocol,
                          QueryRecord, build_query_context, cbgm_dataset,
                          check_search_protocols, evaluate_person_search,
                          protocol_features, rank_search, save_search_results)


@METRICS.register_module()
class PersonSearchMetric(BaseMetric):
    """Person search mAP / top-k and detection recall / AP.

    The field's protocol (see :mod:`mmps.evaluation.functional`): CUHK-SYSU
    galleries from the query's ``gallery_img_ids`` (``TestG<S>``), otherwise
    every gallery image but the query's own (PRW, CUHK-SYSU full set).

    The test split is one pass over gallery and query samples (see
    :class:`mmps.datasets.BasePersonSearchDataset`). Each data sample holds
    the metainfo ``img_id``, ``img_name``, ``cam_id``, ``is_query`` and, for
    queries, ``query_id``, ``query_img_index``, ``gallery_img_ids``;
    ``scale_factor``; ``gt_instances`` with ``bboxes`` (input pixels, as
    every box after the pipeline; divided by ``scale_factor`` here) and
    ``person_ids``;
    ``pred_instances`` with ``bboxes`` (original pixels), ``scores`` and
    ``feats`` (n, D) for gallery images and ``feats`` (1, D) (the query box's
    feature) for queries. Detections scoring below ``det_thresh`` are dropped
    in :meth:`process`. The result does not depend on the order the samples
    arrive in.

    Two search protocols (``protocols``): ``'gt_box'``, the field's (query
    feature = the query box's); ``'best_iou_det'``, the DICL authors' PRW
    evaluation (query feature = the L2-normalised feature of the detection of
    the query frame overlapping the query box most, gallery similarities =
    dot products with L2-normalised features times the detection score; its
    figures get the suffix ``_ref``). See
    :mod:`mmps.evaluation.functional.search_protocols`.

    CBGM (``cbgm=True``): also reports the search figures re-scored by
    SeqNet's context bipartite graph matching (under ``'gt_box'``, suffix
    ``_cbgm``: ``mAP_cbgm``, ``top-1_cbgm``...). The context of a query is
    built from the records, no extra model pass: its box with its feature,
    then the detections of its own frame (the gallery sample
    ``query_img_index``) scoring ``>= det_thresh`` and overlapping the box by
    ``IoU <= 0.5``, by decreasing score; a query whose frame is not a gallery
    image has its box alone (no re-scoring). See
    :mod:`mmps.evaluation.functional.cbgm`.

    Rankings: after :meth:`keep_rankings` (which
    :class:`mmps.engine.hooks.SearchVisualizationHook` calls before the test
    epoch), every evaluation also ranks the gallery detections of the
    queries ``query_id < num_queries`` (their top-k with the match flags of
    the evaluation, :func:`~mmps.evaluation.functional.rank_search`) and
    leaves them in :attr:`rankings` on the main process (with the samples'
    ``img_path``): under the first of ``protocols`` and, with
    ``cross_camera='both'``, over all cameras.

    Args:
        det_thresh (float): Minimum detection score. Defaults to 0.5.
        protocols (Sequence[str]): Search protocols to report.
            Defaults to ``('gt_box', )``.
        query_det_thresh (float): Under ``'best_iou_det'``, the detections of
            a query frame scoring above it are its candidates (all the
            detections above it are kept until the end). Defaults to 0.05.
        cross_camera (bool | str): Search over other cameras only (True), all
            (False), or report both (``'both'``, for PRW: the cross-camera
            figures get the suffix ``_cross_cam``). Defaults to False.
        topk (Sequence[int]): Ranks of the top-k accuracies.
            Defaults to (1, 5, 10).
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to None
            (``mAP``, ``top-1`` ...).
        results_file (str, optional): Also write the gallery detections (all
            the model returned, not only those above ``det_thresh``) and the
            query features to this ``.npz`` file, the format of
            ``tools/analysis_tools/eval_search.py`` (``tools/test.py --out``),
            with the query context of CBGM (``query_ctx_*``, detections
            scoring ``>= det_thresh``). Defaults to None.
        cbgm (bool): Also report the figures with CBGM. Defaults to False.
        cbgm_k1 (int, optional): CBGM re-scores the images of the ``k1``
            most similar detections of a query. Defaults to None (SeqNet's:
            10 on CUHK-SYSU, 30 on PRW, told apart by
            :func:`~mmps.evaluation.functional.cbgm_dataset`).
        cbgm_k2 (int, optional): Context rows, the query box included.
            Defaults to None (SeqNet's: 3 on CUHK-SYSU, 4 on PRW).
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 det_thresh: float = 0.5,
                 protocols: Sequence[str] = ('gt_box', ),
                 query_det_thresh: float = 0.05,
                 cross_camera: Union[bool, str] = False,
                 topk: Sequence[int] = (1, 5, 10),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 results_file: Optional[str] = None,
                 cbgm: bool = False,
                 cbgm_k1: Optional[int] = None,
                 cbgm_k2: Optional[int] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.results_file = results_file
        self.cbgm = bool(cbgm)
        self.cbgm_k1 = cbgm_k1
        self.cbgm_k2 = cbgm_k2
        for k in (cbgm_k1, cbgm_k2):
            if k is not None and int(k) < 1:
                raise ValueError('cbgm_k1 and cbgm_k2 must be >= 1, got '
                                 f'{cbgm_k1}, {cbgm_k2}')
        if cross_camera not in (True, False, 'both'):
            raise ValueError("cross_camera must be True, False or 'both', "
                             f'got {cross_camera!r}')
        self.protocols = check_search_protocols(protocols)
        self.query_det_thresh = query_det_thresh
        self.det_thresh = det_thresh
        self.cross_camera = cross_camera
        self.topk = tuple(int(k) for k in topk)
        self._ranking_cfg: Optional[dict] = None
        self.rankings: List[dict] = []

    def keep_rankings(self,
                      num_queries: int,
                      topk: int = 10,
                      det_thresh: Optional[float] = None) -> None:
        """Also rank the first queries at every evaluation (see the class).

        Args:
            num_queries (int): Rank the queries with ``query_id`` below it
                (0: none).
            topk (int): Detections per query. Defaults to 10.
            det_thresh (float, optional): Minimum detection score of the
                rankings. Defaults to None (``det_thresh``).
        """
        self._ranking_cfg = dict(
            num_queries=int(num_queries),
            topk=int(topk),
            det_thresh=self.det_thresh
            if det_thresh is None else float(det_thresh))

    @staticmethod
    def original_pixels(boxes: np.ndarray, sample: dict) -> np.ndarray:
        """GT boxes of a packed sample (input pixels: the annotations are
        loaded before ``Resize``) in original-image pixels, float64.

        Raises:
            ValueError: The test pipeline flipped the image (a flip of the
                boxes cannot be told apart here).
        """
        if sample.get('flip', False):
            raise ValueError(
                f'PersonSearchMetric: {sample.get("img_path", "a sample")} '
                'was flipped by the test pipeline: evaluate unflipped images')
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        sw, sh = sample.get('scale_factor', (1., 1.))
        return boxes / np.array([sw, sh, sw, sh], np.float64)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep a compact numpy record of every sample.

        Args:
            data_batch (Any): Unused.
            data_samples (Sequence[dict]): Model outputs
                (``DetDataSample.to_dict()``).
        """
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            gt = sample.get('gt_instances', {})
            pred = sample['pred_instances']
            gt_pids = to_numpy(gt.get('person_ids', np.zeros(0))).astype(
                np.int64).reshape(-1)
            gt_boxes = self.original_pixels(
                to_numpy(gt.get('bboxes', np.zeros((0, 4)))), sample)
            feats = to_numpy(pred['feats']).astype(np.float32)
            if sample.get('is_query', False):
                if len(gt_pids) < 1:
                    raise ValueError(
                        f'PersonSearchMetric: query {sample.get("query_id")} '
                        'has no gt_instances.person_ids')
                ids = sample.get('gallery_img_ids')
                query = QueryRecord(
                    query_id=sample['query_id'],
                    box=gt_boxes[0] if len(gt_boxes) else np.zeros(4),
                    person_id=gt_pids[0],
                    cam_id=sample.get('cam_id', 0),
                    query_img_index=int(sample.get('query_img_index', -1)),
                    gallery_img_ids=None if ids is None else to_numpy(ids))
                self.results.append(
                    dict(
                        is_query=True,
                        query=query,
                        img_path=sample.get('img_path'),
                        feat=feats.reshape(-1)))
            else:
                scores = to_numpy(pred['scores']).astype(
                    np.float32).reshape(-1)
                if len(scores) or feats.ndim != 2:
                    feats = feats.reshape(len(scores), -1)
                # detections below the thresholds never count: drop them
                # now, unless the results file should hold everything
                keep = scores >= self.det_thresh
                if 'best_iou_det' in self.protocols:  # query candidates
                    keep |= scores > self.query_det_thresh
                if self._ranking_cfg is not None:
                    keep |= scores >= self._ranking_cfg['det_thresh']
                if self.results_file:
                    keep[:] = True
                boxes = to_numpy(pred['bboxes']).astype(np.float32)
                self.results.append(
                    dict(
                        is_query=False,
                        image=GalleryRecord(
                            img_id=sample['img_id'],
                            img_name=sample.get('img_name'),
                            cam_id=sample.get('cam_id', 0),
                            gt_boxes=gt_boxes,
                            gt_pids=gt_pids),
                        img_path=sample.get('img_path'),
                        dets=np.concatenate(
                            [boxes.reshape(-1, 4)[keep], scores[keep, None]],
                            axis=1),
                        feats=feats[keep]))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Rebuild the protocol from the samples and evaluate.

        Args:
            results (list[dict]): The records of :meth:`process` from all
                ranks.

        Returns:
            dict[str, float]: ``mAP``, ``top-<k>``, ``det_recall``,
            ``det_ap``, ``det_recall_labeled``, ``det_ap_labeled`` (and
            ``mAP_cbgm``, ``top-<k>_cbgm`` with ``cbgm``).
        """
        logger = MMLogger.get_current_instance()
        gallery = {r['image'].img_id: r for r in results if not r['is_query']}
        queries = {r['query'].query_id: r for r in results if r['is_query']}
        gallery = [gallery[k] for k in sorted(gallery)]
        queries = [queries[k] for k in sorted(queries)]
        protocol = PersonSearchProtocol.from_records(
            [g['image'] for g in gallery], [q['query'] for q in queries])
        dim = queries[0]['feat'].shape[0] if queries else (
            gallery[0]['feats'].shape[1] if gallery else 0)
        num = [len(g['dets']) for g in gallery]
        det_img = np.repeat(np.arange(len(gallery)), num)
        dets = np.concatenate([g['dets'] for g in gallery]) if gallery \
            else np.zeros((0, 5), np.float32)
        det_feats = np.concatenate([g['feats'] for g in gallery]) \
            if gallery else np.zeros((0, dim), np.float32)
        query_feats = np.stack([q['feat'] for q in queries]) if queries \
            else np.zeros((0, det_feats.shape[1]), np.float32)
        context = build_query_context(
            protocol, det_img, dets, det_feats, query_feats,
            det_thresh=self.det_thresh) \
            if self.cbgm or self.results_file else None
        if self.results_file:
            names = [g['image'].img_name for g in gallery]
            save_search_results(self.results_file, names, det_img, dets,
                                det_feats, query_feats, context)
            logger.info(f'search results written to {self.results_file}')
        cbgm = None
        if self.cbgm:
            cbgm = CBGM.for_protocol(context, protocol, self.cbgm_k1,
                                     self.cbgm_k2)
            alone = int((np.bincount(context.query,
                                     minlength=protocol.num_queries)
                         < 2).sum())
            logger.info(
                f'CBGM as on {cbgm_dataset(protocol)}: k1={cbgm.k1}, '
                f'k2={cbgm.k2}; {alone} of {protocol.num_queries} queries '
                'have no context person (their frame is not a gallery image '
                'or has no other detection)')
        metrics = evaluate_person_search(
            protocol, det_img, dets, det_feats, query_feats,
            det_thresh=self.det_thresh, cross_camera=self.cross_camera,
            topk=self.topk, protocols=self.protocols,
            query_det_thresh=self.query_det_thresh, cbgm=cbgm)
        logger.info(
            format_person_search_table(metrics, len(gallery), len(queries)))
        self.rankings = self._rank(protocol, gallery, queries, det_img, dets,
                                   det_feats, query_feats)
        return metrics

    def _rank(self, protocol: PersonSearchProtocol, gallery: List[dict],
              queries: List[dict], det_img: np.ndarray, dets: np.ndarray,
              det_feats: np.ndarray, query_feats: np.ndarray) -> List[dict]:
        """The rankings asked for by :meth:`keep_rankings` (see the class).

        Returns:
            list[dict]: Per query, ``query_id``, ``img_path``, ``box`` (4, ),
            ``person_id`` and ``hits``: best first, dicts with ``rank`` (the
            position, from 1), ``img_id``, ``img_path``, ``box`` (tuple),
            ``score``, ``similarity`` and ``match`` (the protocol's match
            rule).
        """
        cfg = self._ranking_cfg
        if cfg is None:
            return []
        chosen = [
            i for i, q in enumerate(queries)
            if q['query'].query_id < cfg['num_queries']
        ]
        if not chosen:
            return []
        gal_feats, q_feats = protocol_features(self.protocols[0], protocol,
                                               det_img, dets, det_feats,
                                               query_feats,
                                               self.query_det_thresh)
        rankings = rank_search(
            protocol, det_img, dets, gal_feats, q_feats, queries=chosen,
            k=cfg['topk'], det_thresh=cfg['det_thresh'],
            cross_camera=self.cross_camera is True)
        out = []
        for r in rankings:
            query = queries[r.query]
            hits = [
                dict(
                    rank=i + 1,
                    img_id=gallery[g]['image'].img_id,
                    img_path=gallery[g]['img_path'],
                    box=tuple(r.boxes[i].tolist()),
                    score=float(r.scores[i]),
                    similarity=float(r.sims[i]),
                    match=bool(r.matches[i]))
                for i, g in enumerate(r.img.tolist())
            ]
            out.append(
                dict(
                    query_id=query['query'].query_id,
                    img_path=query['img_path'],
                    box=query['query'].box,
                    person_id=query['query'].person_id,
                    hits=hits))
        return out


#: Row titles of the protocols in :func:`format_person_search_table`.
PROTOCOL_TITLES = {
    '': 'search, GT-box query (the field\'s protocol)',
    '_ref': 'search, best-IoU detection query x score (DICL authors\' PRW)',
    '_cbgm': 'search, GT-box query + CBGM (SeqNet\'s re-scoring)',
}


def format_person_search_table(metrics: Dict[str, float], num_gallery: int,
                               num_queries: int) -> str:
    """The metrics as text tables (percentages): one row per protocol.

    Args:
        metrics (dict[str, float]): Output of ``evaluate_person_search``.
        num_gallery (int): Number of gallery images evaluated.
        num_queries (int): Number of queries evaluated.

    Returns:
        str: The tables, with a title line.
    """
    from terminaltables import AsciiTable
    det = {k: v for k, v in metrics.items() if k.startswith('det_')}
    search = {k: v for k, v in metrics.items() if k not in det}
    rows = {}
    for key, value in search.items():
        suffix = next((s for s in PROTOCOL_TITLES if s and key.endswith(s)),
                      '')
        name = key[:len(key) - len(suffix)] if suffix else key
        rows.setdefault(suffix, {})[name] = value
    tables = []
    if rows:
        names = list(next(iter(rows.values())))
        body = [[PROTOCOL_TITLES[s]] +
                [f'{100 * r[n]:.2f}' if n in r else '' for n in names]
                for s, r in rows.items()]
        tables.append(AsciiTable([['protocol'] + names] + body).table)
    if det:
        tables.append(
            AsciiTable([list(det),
                        [f'{100 * v:.2f}' for v in det.values()]]).table)
    return (f'Person search ({num_gallery} gallery images, {num_queries} '
            'queries, %):\n' + '\n'.join(tables))

# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mmps.evaluation import PersonSearchMetric
from mmps.registry import HOOKS
from mmps.visualization import draw_search_result


@HOOKS.register_module()
class SearchVisualizationHook(Hook):
    """Draw the ranked results of the first test queries.

    The evaluation ranks, the hook draws: before the test epoch it asks the
    :class:`~mmps.evaluation.PersonSearchMetric` of the test evaluator to
    keep the rankings of the queries ``query_id < num_queries``
    (:meth:`~mmps.evaluation.PersonSearchMetric.keep_rankings`); after the
    epoch, on rank 0, it draws the metric's
    :attr:`~mmps.evaluation.PersonSearchMetric.rankings` with
    :func:`mmps.visualization.draw_search_result` into
    ``out_dir/query_XXXX.jpg`` (the query id). The metric searches each query
    in its gallery and flags its hits with the evaluation's match rule (see
    :func:`mmps.evaluation.functional.rank_search`): a hit is green when it
    is the query identity's true positive in its image, red otherwise; amber
    when the query's identity is unknown.

    ``tools/test.py --show-dir DIR [--show-queries N]`` adds this hook.

    Args:
        out_dir (str): Folder of the pictures (created).
        num_queries (int): Draw the queries with ``query_id`` below it.
            Defaults to 20.
        topk (int): Hits per picture. Defaults to 10.
        det_thresh (float, optional): Minimum detection score of the hits.
            Defaults to None (the metric's ``det_thresh``).
        height (int): Height of the images in a picture. Defaults to 240.
    """

    priority = 'LOW'

    def __init__(self,
                 out_dir: str,
                 num_queries: int = 20,
                 topk: int = 10,
                 det_thresh: Optional[float] = None,
                 height: int = 240) -> None:
        self.out_dir = out_dir
        self.num_queries = int(num_queries)
        self.topk = int(topk)
        self.det_thresh = None if det_thresh is None else float(det_thresh)
        self.height = int(height)
        self._metric: Optional[PersonSearchMetric] = None

    def before_test_epoch(self, runner) -> None:
        """Ask the test evaluator's person search metric for rankings."""
        self._metric = None
        if self.num_queries <= 0:
            return
        self._metric = next((m for m in runner.test_evaluator.metrics
                             if isinstance(m, PersonSearchMetric)), None)
        if self._metric is None:
            print_log(
                'SearchVisualizationHook: the test evaluator has no '
                'PersonSearchMetric, no search result is drawn',
                logger='current',
                level=30)
            return
        self._metric.keep_rankings(
            self.num_queries, topk=self.topk, det_thresh=self.det_thresh)

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Draw the metric's rankings on rank 0."""
        if self._metric is None or not is_main_process():
            return
        written = self.draw(self._metric.rankings)
        runner.logger.info(f'{written} search result pictures written to '
                           f'{self.out_dir}')

    def draw(self, rankings: List[dict]) -> int:
        """Draw rankings, one picture per query.

        Args:
            rankings (list[dict]): As
                :attr:`~mmps.evaluation.PersonSearchMetric.rankings` holds
                them.

        Returns:
            int: Number of pictures written.
        """
        if rankings:
            mkdir_or_exist(self.out_dir)
        for query in rankings:
            known = query['person_id'] >= 0
            draw_search_result(
                query['img_path'],
                query['box'],
                query['hits'],
                correct=[hit['match'] for hit in query['hits']]
                if known else None,
                height=self.height,
                query_label=f'pid {query["person_id"]}' if known else None,
                out_file=osp.join(self.out_dir,
                                  f'query_{query["query_id"]:04d}.jpg'))
        return len(rankings)

# Copyright (c) OpenMMLab. All rights reserved.
"""Search results on disk: one ``.npz`` file, gallery keyed by image name.

Fields::

    gallery_img_names  (G, ) str      gallery image names
    gallery_det_img    (M, ) int      index into gallery_img_names
    gallery_dets       (M, 5) float   x1, y1, x2, y2, score (original pixels)
    gallery_feats      (M, D) float   detection features
    query_feats        (Q, D) float   query features, dataset query order

Optional, all three or none: the query context of CBGM (see
:mod:`~mmps.evaluation.functional.cbgm`)::

    query_ctx_query    (K, ) int      row of query_feats of each context row
    query_ctx_dets     (K, 5) float   x1, y1, x2, y2, score; the first row of
                                      each query is the query box itself
    query_ctx_feats    (K, D) float   context features

Gallery images without detections may be left out of ``gallery_img_names``.
"""
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .cbgm import QueryContext
from .protocol import PersonSearchProtocol

#: Fields of a search results file, in order.
SEARCH_RESULT_FIELDS = ('gallery_img_names', 'gallery_det_img',
                        'gallery_dets', 'gallery_feats', 'query_feats')
#: Optional fields: the query context of CBGM.
SEARCH_CONTEXT_FIELDS = ('query_ctx_query', 'query_ctx_dets',
                         'query_ctx_feats')


class SearchResultsError(ValueError):
    """A search results file is missing, malformed, or does not fit the
    dataset it is evaluated on."""


def save_search_results(path: str, gallery_img_names: Sequence[str],
                        gallery_det_img: np.ndarray,
                        gallery_dets: np.ndarray, gallery_feats: np.ndarray,
                        query_feats: np.ndarray,
                        query_context: Optional[QueryContext] = None) -> None:
    """Write search results to ``path`` (``.npz``, uncompressed).

    Args:
        path (str): Output file; ``.npz`` is appended by numpy if missing.
        gallery_img_names (Sequence[str]): (G, ) gallery image names.
        gallery_det_img (np.ndarray): (M, ) index into the names.
        gallery_dets (np.ndarray): (M, 5) x1, y1, x2, y2, score.
        gallery_feats (np.ndarray): (M, D) detection features.
        query_feats (np.ndarray): (Q, D) query features.
        query_context (QueryContext, optional): Also write the query context
            (``query_ctx_*``). Defaults to None.
    """
    arrays = dict(
        gallery_img_names=np.asarray(list(gallery_img_names), dtype=str),
        gallery_det_img=np.asarray(gallery_det_img, np.int64),
        gallery_dets=np.asarray(gallery_dets),
        gallery_feats=np.asarray(gallery_feats),
        query_feats=np.asarray(query_feats))
    if query_context is not None:
        arrays.update(
            query_ctx_query=query_context.query,
            query_ctx_dets=query_context.dets,
            query_ctx_feats=query_context.feats)
    _validate(arrays, path)
    np.savez(path, **arrays)


def load_search_results(path: str) -> Dict[str, np.ndarray]:
    """Read and check a search results file.

    Args:
        path (str): The ``.npz`` file.

    Returns:
        dict[str, np.ndarray]: The fields of :data:`SEARCH_RESULT_FIELDS`,
        and those of :data:`SEARCH_CONTEXT_FIELDS` when the file has them.

    Raises:
        SearchResultsError: The file is missing or unreadable, a field is
            missing (or only some context fields are there), or a field has
            the wrong shape, type or values (NaN or Inf in ``gallery_dets``,
            ``gallery_feats``, ``query_feats`` or the context included).
    """
    if not osp.isfile(path):
        raise SearchResultsError(f'{path}: results file not found')
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in SEARCH_RESULT_FIELDS if k not in npz.files]
            if missing:
                raise SearchResultsError(
                    f'{path}: missing field(s) {missing} (has {npz.files})')
            ctx = [k for k in SEARCH_CONTEXT_FIELDS if k in npz.files]
            if ctx and len(ctx) < len(SEARCH_CONTEXT_FIELDS):
                raise SearchResultsError(
                    f'{path}: has {ctx} but not the other query context '
                    f'field(s) of {list(SEARCH_CONTEXT_FIELDS)}')
            arrays = {k: npz[k] for k in SEARCH_RESULT_FIELDS + tuple(ctx)}
    except SearchResultsError:
        raise
    except Exception as e:
        raise SearchResultsError(f'{path}: not a readable .npz file ({e})')
    _validate(arrays, path)
    return arrays


def _validate(a: Dict[str, np.ndarray], path: str) -> None:

    def fail(field, msg):
        raise SearchResultsError(f'{path}: {field} {msg}')

    names = a['gallery_img_names']
    if names.ndim != 1 or (names.size and names.dtype.kind != 'U'):
        fail('gallery_img_names', f'must be a 1-d array of str, got shape '
             f'{names.shape} ({names.dtype})')
    if len(set(names.tolist())) != len(names):
        fail('gallery_img_names', 'repeats a name')
    dets, feats = _check_indexed_rows(
        a, fail, ('gallery_det_img', 'gallery_dets', 'gallery_feats'),
        'gallery_img_names', len(names), 'detection')
    M = len(dets)
    qf = a['query_feats']
    if qf.ndim != 2 or (qf.size and qf.dtype.kind != 'f'):
        fail('query_feats', f'must be (Q, D) float, got shape {qf.shape} '
             f'({qf.dtype})')
    if M and len(qf) and qf.shape[1] != feats.shape[1]:
        fail('query_feats', f'has {qf.shape[1]} dims but gallery_feats '
             f'{feats.shape[1]}')
    _check_finite_fields(fail, gallery_dets=dets, gallery_feats=feats,
                         query_feats=qf)
    if 'query_ctx_query' in a:
        _validate_context(a, fail)


def _validate_context(a: Dict[str, np.ndarray], fail) -> None:
    """Check the query context fields (see the module)."""
    qf = a['query_feats']
    dets, feats = _check_indexed_rows(
        a, fail, ('query_ctx_query', 'query_ctx_dets', 'query_ctx_feats'),
        'the rows of query_feats', len(qf), 'context row')
    K = len(dets)
    if K and qf.ndim == 2 and feats.shape[1] != qf.shape[1]:
        fail('query_ctx_feats', f'has {feats.shape[1]} dims but query_feats '
             f'{qf.shape[1]}')
    _check_finite_fields(fail, query_ctx_dets=dets, query_ctx_feats=feats)


def _check_indexed_rows(a: Dict[str, np.ndarray], fail, fields: tuple,
                        target: str, num_targets: int,
                        row: str) -> tuple:
    """Check an (index, boxes, features) triple of fields: a 1-d int index
    into ``target`` (``num_targets`` entries), (K, 5) float boxes with a
    score and (K, D) float features, one row per index entry.

    Returns:
        tuple[np.ndarray, np.ndarray]: The boxes and the features.
    """
    index_field, dets_field, feats_field = fields
    index = a[index_field]
    if index.ndim != 1 or (index.size and index.dtype.kind not in 'iu'):
        fail(index_field, f'must be a 1-d int array, got shape '
             f'{index.shape} ({index.dtype})')
    K = len(index)
    if K and (index.min() < 0 or index.max() >= num_targets):
        fail(index_field, f'must index {target} (0 .. {num_targets - 1}), '
             f'got values in [{index.min()}, {index.max()}]')
    dets = a[dets_field]
    if dets.shape != (K, 5) or (dets.size and dets.dtype.kind != 'f'):
        fail(dets_field, f'must be ({K}, 5) float [x1, y1, x2, y2, score] '
             f'(one row per {index_field} entry), got shape {dets.shape} '
             f'({dets.dtype})')
    feats = a[feats_field]
    if feats.ndim != 2 or len(feats) != K or (feats.size
                                              and feats.dtype.kind != 'f'):
        fail(feats_field, f'must be ({K}, D) float (one row per {row}), got '
             f'shape {feats.shape} ({feats.dtype})')
    return dets, feats


def _check_finite_fields(fail, **fields: np.ndarray) -> None:
    """``fail`` on the first field with a NaN or an Inf."""
    for field, arr in fields.items():
        bad = _non_finite_rows(arr)
        if len(bad):
            fail(field, f'has {len(bad)} row(s) with NaN or Inf values, e.g. '
                 f'row(s) {bad[:5].tolist()}')


def _non_finite_rows(arr: np.ndarray) -> np.ndarray:
    """Indices of the rows of a 2-d float array holding a NaN or an Inf."""
    if arr.size == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(~np.isfinite(arr).all(axis=1))


def align_search_results(results: Dict[str, np.ndarray],
                         protocol: PersonSearchProtocol,
                         source: Optional[str] = None
                         ) -> Tuple[np.ndarray, np.ndarray, np.ndarray,
                                    np.ndarray]:
    """Map a results file onto a protocol's gallery images.

    Args:
        results (dict): As returned by :func:`load_search_results`.
        protocol (PersonSearchProtocol): The test split evaluated.
        source (str, optional): Name of the results (for the errors).

    Returns:
        tuple: ``det_img`` (M, ) protocol gallery indices, ``dets`` (M, 5),
        ``det_feats`` (M, D), ``query_feats`` (Q, D): the arguments of
        :func:`eval_search`.

    Raises:
        SearchResultsError: A gallery image name is not a gallery image of the
            protocol, or the number of queries differs.
    """
    where = source or 'search results'
    index = {n: i for i, n in enumerate(protocol.img_names.tolist())}
    names = results['gallery_img_names'].tolist()
    unknown = [n for n in names if n not in index]
    if unknown:
        raise SearchResultsError(
            f'{where}: gallery_img_names has {len(unknown)} name(s) that are '
            f'not gallery images of the dataset, e.g. {unknown[:3]}')
    qf = results['query_feats']
    if len(qf) != protocol.num_queries:
        raise SearchResultsError(
            f'{where}: query_feats has {len(qf)} rows but the dataset has '
            f'{protocol.num_queries} queries')
    to_protocol = np.array([index[n] for n in names], np.int64)
    feats = results['gallery_feats']
    if len(feats) == 0:
        feats = feats.reshape(0, qf.shape[1] if qf.ndim == 2 else 0)
    return (to_protocol[results['gallery_det_img'].astype(np.int64)],
            results['gallery_dets'].reshape(-1, 5),
            feats, qf)


def search_results_context(results: Dict[str, np.ndarray],
                           source: Optional[str] = None) -> QueryContext:
    """The query context of a results file (what CBGM needs).

    Args:
        results (dict): As returned by :func:`load_search_results`.
        source (str, optional): Name of the results (for the errors).

    Returns:
        QueryContext: The rows of the ``query_ctx_*`` fields.

    Raises:
        SearchResultsError: The file has no query context fields.
    """
    missing = [k for k in SEARCH_CONTEXT_FIELDS if k not in results]
    if missing:
        raise SearchResultsError(
            f'{source or "search results"}: CBGM needs the query context, '
            f'but the file has no field(s) {missing} (write them with '
            'tools/test.py --out)')
    feats = results['query_ctx_feats']
    if len(feats) == 0:
        feats = feats.reshape(0, results['query_feats'].shape[-1])
    return QueryContext(
        query=results['query_ctx_query'].astype(np.int64),
        dets=results['query_ctx_dets'].reshape(-1, 5),
        feats=feats)


__all__ = [
    'SEARCH_RESULT_FIELDS', 'SEARCH_CONTEXT_FIELDS', 'SearchResultsError',
    'save_search_results', 'load_search_results', 'align_search_results',
    'search_results_context'
]

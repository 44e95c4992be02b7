# Copyright (c) OpenMMLab. All rights reserved.
"""A cache of the records read from native annotation files.

Reading the CUHK-SYSU protocol files costs seconds (``TestG4000.mat``: 2.2 GB
of zlib output); the records they give are a few MB. They are kept as ``.npz``
files (no pickle) in a user cache folder:

* ``$MMPS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/mmps``, else
  ``~/.cache/mmps`` (never inside the dataset root); ``MMPS_CACHE=0``
  turns the cache off.
* The key is a hash of the reader's format version, what is read (dataset,
  split, gallery size), the real path of the dataset root (error messages
  name the files) and, for every source file, its size and a BLAKE2 hash of
  its whole content: an edited, replaced or truncated file misses the cache
  whatever its modification time.
* Entries are written to a temporary file in the cache folder and moved into
  place with :func:`os.replace`, so two processes filling the same entry
  never leave a partial file; an unreadable entry is rebuilt.

Only numpy and the standard library are imported.
"""
import hashlib
import json
import os
import os.path as osp
import tempfile
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

__all__ = [
    'cache_dir', 'file_digest', 'cached_arrays', 'pack_images',
    'unpack_images', 'pack_queries', 'unpack_queries'
]

#: bump when the records or their packing change
FORMAT_VERSION = 1


def cache_dir() -> Optional[str]:
    """The cache folder, or None when the cache is off (``MMPS_CACHE=0``)."""
    if os.environ.get('MMPS_CACHE', '1').lower() in ('0', 'off', 'false',
                                                      'no'):
        return None
    root = os.environ.get('MMPS_CACHE_DIR')
    if not root:
        base = os.environ.get('XDG_CACHE_HOME') or osp.join(
            osp.expanduser('~'), '.cache')
        root = osp.join(base, 'mmps')
    return osp.join(root, 'annotations')


def file_digest(path: str) -> str:
    """Size and BLAKE2b hash of a file's content."""
    h = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, 'rb') as f:
        while True:
            chunk = f.read(1 << 24)
            if not chunk:
                break
            size += len(chunk)
            h.update(chunk)
    return f'{size}:{h.hexdigest()}'


def _key(what: dict, root: str, files: Sequence[str]) -> str:
    text = json.dumps(
        dict(version=FORMAT_VERSION, what=what, root=osp.realpath(root),
             files=[(osp.relpath(f, root), file_digest(f)) for f in files]),
        sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def cached_arrays(what: dict, root: str, files: Sequence[str],
                  build: Callable[[], Dict[str, np.ndarray]]
                  ) -> Dict[str, np.ndarray]:
    """``build()``'s arrays, from the cache when the files are unchanged.

    Args:
        what (dict): What is read (JSON-serialisable: dataset, split...).
        root (str): The dataset root.
        files (Sequence[str]): Every file ``build`` reads.
        build (Callable): Reads the files; returns name -> numpy array (no
            object arrays).

    Returns:
        dict: name -> array.
    """
    folder = cache_dir()
    missing = [f for f in files if not osp.isfile(f)]
    if folder is None or missing:  # a missing file: let build() name it
        return build()
    path = osp.join(folder, f'{what.get("dataset", "records")}-'
                    f'{_key(what, root, files)}.npz')
    if osp.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except Exception:  # a broken entry: rebuild it
            pass
    arrays = build()
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:  # a read-only or full cache folder: work without it
        pass
    return arrays


def pack_images(records: Sequence[dict], prefix: str) -> dict:
    """Image records (``name, boxes, person_ids, cam_id``) as flat arrays."""
    counts = np.array([len(r['boxes']) for r in records], np.int64)
    return {
        f'{prefix}names': np.array([r['name'] for r in records], str),
        f'{prefix}counts': counts,
        f'{prefix}boxes': np.concatenate(
            [np.asarray(r['boxes'], np.float64).reshape(-1, 4)
             for r in records] + [np.zeros((0, 4))]),
        f'{prefix}pids': np.concatenate(
            [np.asarray(r['person_ids'], np.int64) for r in records] +
            [np.zeros(0, np.int64)]),
        f'{prefix}cams': np.array([r.get('cam_id', 0) for r in records],
                                  np.int64),
    }


def unpack_images(arrays: dict, prefix: str) -> List[dict]:
    """The inverse of :func:`pack_images`."""
    ends = np.cumsum(arrays[f'{prefix}counts']).tolist()
    starts = [0] + ends[:-1]
    boxes, pids = arrays[f'{prefix}boxes'], arrays[f'{prefix}pids']
    return [
        dict(name=n, boxes=boxes[a:b], person_ids=pids[a:b], cam_id=c)
        for n, a, b, c in zip(arrays[f'{prefix}names'].tolist(), starts,
                              ends, arrays[f'{prefix}cams'].tolist())
    ]


def pack_queries(queries: Sequence[dict]) -> dict:
    """Query records (``name, box, person_id, cam_id, gallery_idx,
    where``) as flat arrays."""
    lists = [q.get('gallery_idx') for q in queries]
    out = dict(
        q_names=np.array([q['name'] for q in queries], str),
        q_boxes=np.array([q['box'] for q in queries],
                         np.float64).reshape(-1, 4),
        q_pids=np.array([q['person_id'] for q in queries], np.int64),
        q_cams=np.array([q.get('cam_id', 0) for q in queries], np.int64),
        q_where=np.array([q.get('where', '') for q in queries], str))
    if queries and lists[0] is not None:
        out['q_gallery_offsets'] = np.concatenate(
            [[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
        out['q_gallery_idx'] = np.concatenate(lists).astype(np.int64)
    return out


def unpack_queries(arrays: dict) -> List[dict]:
    """The inverse of :func:`pack_queries`."""
    off = arrays.get('q_gallery_offsets')
    idx = arrays.get('q_gallery_idx')
    out = []
    for i, (name, box, pid, cam, where) in enumerate(
            zip(arrays['q_names'].tolist(), arrays['q_boxes'],
                arrays['q_pids'].tolist(), arrays['q_cams'].tolist(),
                arrays['q_where'].tolist())):
        q = dict(name=name, box=box, person_id=pid, cam_id=cam,
                 gallery=None, gallery_idx=None)
        if off is not None:
            q['gallery_idx'] = idx[off[i]:off[i + 1]]
        if where:
            q['where'] = where
        out.append(q)
    return out

# Copyright (c) OpenMMLab. All rights reserved.
"""Synthetic person-search datasets in the native CUHK-SYSU and PRW formats.

The generator first lays out every image (which identities appear where, how
large, what occludes them) with ``np.random.default_rng(seed)``, writes the
annotation files from that layout, and then (unless ``annotations_only``) draws
the images with independent per-image generators. The annotation files are
therefore byte-identical for a seed whether or not images are drawn.

``.mat`` files are written by :mod:`.mat5`, a fast writer that produces the
bytes :func:`scipy.io.savemat` would (with a fixed header date). The CUHK-SYSU
files are zlib-compressed like the original release (``do_compression``; the
large ``TestG*.mat`` at zlib level 1, so their compressed bytes differ from
scipy's level 6 while the content is the same); the PRW files are not.
"""
import os
from concurrent.futures import ThreadPoolExecutor
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from . import mat5
from .render import (make_background, render_scene, sample_appearances,
                     sample_camera_style)

__all__ = [
    'REAL_SIZES', 'SyntheticTruth', 'make_synthetic_cuhk_sysu',
    'make_synthetic_prw'
]

#: Sizes of the real datasets (image, test-image, identity, test-identity and
#: query counts are exact; people per image are chosen to give realistic box
#: counts: CUHK-SYSU ~91k boxes with ~56k in train (real: 96,143 / 55,272),
#: PRW ~41k boxes with ~35k labeled (real: 43,110 / 34,304)).
REAL_SIZES = {
    'cuhk-sysu':
    dict(num_images=18184,
         num_test_images=6978,
         num_ids=8432,
         num_test_ids=2900,
         num_queries=2900,
         persons_per_image=(1, 2),
         num_unlabeled_per_image=(1, 6),
         image_size=(600, 800)),
    'prw':
    dict(num_images=11816,
         num_test_images=6112,
         num_ids=932,
         num_test_ids=450,
         num_queries=2057,
         num_cameras=6,
         persons_per_image=(1, 5),
         num_unlabeled_per_image=(0, 1),
         image_size=(1080, 1920)),
}

#: Person heights as fractions of the image height (35 ... 140 px at 240).
MIN_PERSON_HEIGHT = 35 / 240
MAX_PERSON_HEIGHT = 140 / 240
#: A labeled box whose visible fraction is below this is marked ``ishard``.
HARD_VISIBILITY = 0.4
#: Number of hidden appearance styles ("cameras") of CUHK-SYSU images.
CUHK_NUM_STYLES = 8


@dataclass
class SyntheticTruth:
    """The generator's own ground truth of a synthetic dataset.

    Attributes:
        root (str): Dataset root directory.
        dataset (str): ``'cuhk-sysu'`` or ``'prw'``.
        images (dict[str, dict]): Image file name -> ``boxes`` (float64 (n, 4)
            x1, y1, x2, y2 pixels, integer-valued, in file order), ``pids``
            (int64 (n,), identity >= 1 or -1 for unlabeled), ``split``
            (``'train'`` / ``'test'``), ``cam`` (int; 0 for CUHK-SYSU),
            ``height`` and ``width`` (int).
        train_images (list[str]): Train image names, in file order
            (``Images.mat`` minus the pool / ``frame_train.mat``).
        test_images (list[str]): Test image names, in file order
            (``pool.mat`` / ``frame_test.mat``).
        queries (list[dict]): In file order: ``img`` (name), ``box``
            ((4,) float64 x1, y1, x2, y2) and ``pid`` (int).
        galleries (dict[int, list[list[str]]]): CUHK-SYSU only: gallery size
            S -> per query (same order) its gallery image names, the images
            containing the target first. ``{}`` for PRW.
    """
    root: str
    dataset: str
    images: Dict[str, dict] = field(default_factory=dict)
    train_images: List[str] = field(default_factory=list)
    test_images: List[str] = field(default_factory=list)
    queries: List[dict] = field(default_factory=list)
    galleries: Dict[int, List[List[str]]] = field(default_factory=dict)

    @property
    def num_boxes(self) -> int:
        """Total number of boxes (labeled and unlabeled)."""
        return sum(len(v['pids']) for v in self.images.values())

    def pids(self, split: Optional[str] = None) -> List[int]:
        """Sorted identities (labeled) of a split (``None``: both)."""
        out = set()
        for v in self.images.values():
            if split is None or v['split'] == split:
                out.update(int(p) for p in v['pids'] if p > 0)
        return sorted(out)


# --------------------------------------------------------------------------
# layout
# --------------------------------------------------------------------------


@dataclass
class _Layout:
    height: int
    width: int
    names: List[str]  # image file names, in index order
    is_test: np.ndarray  # (N,) bool
    cams: np.ndarray  # (N,) int (PRW 1..C, CUHK-SYSU 0)
    styles: np.ndarray  # (N,) appearance style (camera) index
    horizon: np.ndarray  # (N,) float
    full: List[np.ndarray] = field(default_factory=list)  # unclipped extents
    boxes: List[np.ndarray] = field(default_factory=list)  # clipped GT boxes
    pids: List[np.ndarray] = field(default_factory=list)
    hard: List[np.ndarray] = field(default_factory=list)
    occluders: List[np.ndarray] = field(default_factory=list)  # (m, 5)


def _count(value: Optional[int], total: int, frac: float = 0.4) -> int:
    return int(round(total * frac)) if value is None else int(value)


def _check_range(name: str, r: Sequence[int]) -> Tuple[int, int]:
    lo, hi = (int(v) for v in r)
    if lo < 0 or hi < lo:
        raise ValueError(f'{name} must be (low, high) with 0 <= low <= high, '
                         f'got {r!r}')
    return lo, hi


def _check_sizes(num_images, num_test_images, num_ids, num_test_ids,
                 image_size) -> None:
    h, w = image_size
    if h < 100 or w < 100:
        raise ValueError(f'image_size (h, w) must be at least (100, 100), '
                         f'got {image_size!r}')
    if not 2 <= num_test_images <= num_images - 2:
        raise ValueError(
            f'need 2 <= num_test_images <= num_images - 2, got '
            f'num_images={num_images}, num_test_images={num_test_images}')
    if not 2 <= num_test_ids <= num_ids - 1:
        raise ValueError(f'need 2 <= num_test_ids <= num_ids - 1, got '
                         f'num_ids={num_ids}, num_test_ids={num_test_ids}')


def _cam_sets(rng: np.random.Generator,
              n: int,
              cams: np.ndarray,
              total: Optional[int] = None) -> List[np.ndarray]:
    """Camera sets of ``n`` identities: each >= 2 cameras (when available);
    sizes summing to ``total`` when given."""
    c = len(cams)
    lo = min(2, c)
    if total is None:
        sizes = rng.integers(lo, c + 1, n)
    else:
        if not lo * n <= total <= c * n:
            raise ValueError(
                f'num_queries={total} is impossible for {n} test identities '
                f'seen by {lo}..{c} cameras each (one query per identity and '
                f'camera): need {lo * n} <= num_queries <= {c * n}')
        sizes = np.full(n, lo)
        extra = total - lo * n
        if extra:
            slots = rng.choice(n * (c - lo), extra, replace=False)
            sizes += np.bincount(slots // (c - lo), minlength=n)
    keys = rng.random((n, c))
    order = np.argsort(keys, axis=1)
    member = np.zeros((n, c), dtype=bool)
    for i in range(n):
        member[i, order[i, :sizes[i]]] = True
    # balance: every camera should see about as many identities as the others
    # (so that each has enough people to fill its frames)
    while True:
        cover = member.sum(axis=0)
        lo_c, hi_c = int(np.argmin(cover)), int(np.argmax(cover))
        if cover[hi_c] - cover[lo_c] <= 1:
            break
        cand = np.flatnonzero(member[:, hi_c] & ~member[:, lo_c])
        i = int(cand[rng.integers(len(cand))])
        member[i, hi_c], member[i, lo_c] = False, True
    return [cams[member[i]] for i in range(n)]


def _assign(rng: np.random.Generator, img_idx: np.ndarray, img_cam: np.ndarray,
            caps: np.ndarray, pids: np.ndarray,
            cam_sets: List[np.ndarray]) -> List[List[int]]:
    """Put identities into the images of one split.

    Every identity goes into one image of each of its cameras (at least two
    images in all), filling the emptiest images first; then every image is
    filled up to its capacity with random eligible identities, at most once
    each per image.

    Returns:
        list[list[int]]: Per image (local index) its identities.
    """
    n = len(img_idx)
    cap = caps.astype(np.float64).copy()
    members: List[List[int]] = [[] for _ in range(n)]
    by_cam = {int(c): np.flatnonzero(img_cam == c) for c in np.unique(img_cam)}
    for j in rng.permutation(len(pids)):
        pid = int(pids[j])
        chosen = []
        for c in cam_sets[j]:
            cand = by_cam[int(c)]
            chosen.append(
                int(cand[np.argmax(cap[cand] + rng.random(len(cand)))]))
        if len(chosen) < 2:
            cand = np.concatenate([by_cam[int(c)] for c in cam_sets[j]])
            score = cap[cand] + rng.random(len(cand))
            score[np.isin(cand, chosen)] = -np.inf
            chosen.append(int(cand[np.argmax(score)]))
        for k in chosen:
            cap[k] -= 1
            members[k].append(pid)
    eligible = {
        c:
        np.array([int(p) for p, ks in zip(pids, cam_sets) if c in ks],
                 dtype=np.int64)
        for c in by_cam
    }
    for k in range(n):
        r = int(cap[k])
        if r <= 0:
            continue
        e = eligible[int(img_cam[k])]
        present = members[k]
        m = min(len(e), r + len(present))
        pick = e[rng.choice(len(e), m, replace=False)].tolist()
        members[k].extend([p for p in pick if p not in present][:r])
    return members


def _iou(a: Sequence[int], b: Sequence[int]) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) *
                    (b[3] - b[1]) - inter)


# body points (fractions of the box) whose coverage gives the visible fraction
_GX, _GY = np.meshgrid([0.25, 0.5, 0.75], np.linspace(0.06, 0.94, 6))
_GX, _GY = _GX.ravel(), _GY.ravel()


def _place(rng: np.random.Generator, H: int, W: int, horizon: float, n: int,
           fixed_occ: np.ndarray, occ_probs: Sequence[float]):
    """Geometry of one image: ``n`` people and the occluders.

    People stand on a ground plane: the smaller (farther), the higher their
    feet; heights are log-uniform in [MIN, MAX]_PERSON_HEIGHT × H, widths
    height / 2.5 (±12 %); at most 30 % of a person is cut off at the sides.

    Returns:
        tuple: full (n, 4) int extents, clipped (n, 4) int boxes, (n,) int
        ishard flags, (m, 5) int occluders (kind, x1, y1, x2, y2).
    """
    hmin, hmax = MIN_PERSON_HEIGHT * H, MAX_PERSON_HEIGHT * H
    h = hmin * (hmax / hmin)**rng.random(n)
    build = rng.uniform(0.88, 1.12, n)
    foot_f = horizon + (0.985 * H - horizon) / hmax * h + rng.normal(
        0, 0.012 * H, n)
    tries = rng.random((n, 6))
    rh = np.maximum(np.rint(h), 20).astype(np.int64)
    rw = np.maximum(np.rint(h / 2.5 * build), 8).astype(np.int64)
    foot = np.clip(np.rint(foot_f).astype(np.int64), rh, H)
    lo = np.maximum(0.2 * rw, 8.5 - 0.5 * rw) + 0.5
    hi = np.maximum(W - lo, lo)
    x1s = np.rint(lo[:, None] + tries * (hi - lo)[:, None] -
                  rw[:, None] / 2).astype(np.int64).tolist()
    placed: List[List[int]] = []
    for i, (w, y2, y1) in enumerate(
            zip(rw.tolist(), foot.tolist(), (foot - rh).tolist())):
        for x1 in x1s[i]:  # avoid near-duplicate boxes
            box = [x1, y1, x1 + w, y2]
            if all(_iou(box, b) <= 0.45 for b in placed):
                break
        placed.append(box)
    full = np.array(placed, dtype=np.int64).reshape(n, 4)
    boxes = np.minimum(np.maximum(full, 0), np.array([W, H, W, H]))
    if np.any(boxes[:, 2:] - boxes[:, :2] < 8):
        raise RuntimeError('internal error: a box smaller than 8 px')
    # occluders, each in front of a random person
    occ = fixed_occ.tolist()
    n_occ = int(rng.choice(len(occ_probs), p=occ_probs)) if n else 0
    for _ in range(n_occ):
        fx1, fy1, fx2, fy2 = placed[int(rng.integers(n))]
        fw, fh = fx2 - fx1, fy2 - fy1
        bottom = min(H, fy2 + int(round(rng.uniform(0.005, 0.03) * H)))
        if rng.random() < 0.5:  # pole
            pw = max(3, int(round(rng.uniform(0.012, 0.03) * W)))
            a, b = fx1 + 0.1 * fw, fx2 - 0.1 * fw - pw
            px = int(round(rng.uniform(min(a, b), max(a, b))))
            px = min(max(px, 0), W - pw)
            top = int(round(rng.uniform(0, 0.3) * H))
            occ.append([0, px, top, px + pw, bottom])
        else:  # crate
            cw = max(6, int(round(fw * rng.uniform(0.6, 1.4))))
            ch = max(6, int(round(fh * rng.uniform(0.2, 0.5))))
            cx = 0.5 * (fx1 + fx2) + rng.uniform(-0.5, 0.5) * fw
            bx = min(max(int(round(cx - cw / 2)), 0), W - cw)
            occ.append([1, bx, bottom - ch, bx + cw, bottom])
    occ = np.array(occ, dtype=np.int64).reshape(-1, 5)
    # visible fraction of body points: outside the image, or inside the body
    # (central 70 % of the box) of a nearer person or a nearer occluder
    fw = full[:, 2] - full[:, 0]
    px = full[:, :1] + fw[:, None] * _GX  # (n, 18)
    py = full[:, 1:2] + (full[:, 3] - full[:, 1])[:, None] * _GY
    margin = 0.15 * fw
    rects = np.concatenate([
        np.stack(
            [full[:, 0] + margin, full[:, 1], full[:, 2] - margin, full[:, 3]],
            axis=1), occ[:, 1:].astype(np.float64)
    ])
    # a person covers people with feet strictly above theirs, an occluder
    # those with feet not below its bottom
    depth = np.concatenate([full[:, 3] - 0.5, occ[:, 4]])
    near = depth[None, :] >= full[:, 3, None]  # (n, R)
    inside = (
        (px[:, :, None] >= rects[:, 0]) & (px[:, :, None] < rects[:, 2])
        & (py[:, :, None] >= rects[:, 1]) & (py[:, :, None] < rects[:, 3])
    )  # (n, 18, R)
    covered = (inside & near[:, None, :]).any(axis=2)
    covered |= (px < 0) | (px >= W) | (py < 0) | (py >= H)
    visible = 1 - covered.mean(axis=1)
    hard = (visible < HARD_VISIBILITY).astype(np.int64)
    return full, boxes, hard, occ


def _layout_people(rng: np.random.Generator, lay: _Layout,
                   members: List[List[int]], unl: Tuple[int, int],
                   fixed_occ: Dict[int, np.ndarray],
                   occ_probs: Sequence[float]) -> None:
    N = len(lay.names)
    n_unl = rng.integers(unl[0], unl[1] + 1, N)
    empty = np.zeros((0, 5), dtype=np.int64)
    for i in range(N):
        pids = members[i] + [-1] * int(n_unl[i])
        if not pids:
            pids = [-1]
        pids = np.array(pids, dtype=np.int64)[rng.permutation(len(pids))]
        full, boxes, hard, occ = _place(rng, lay.height, lay.width,
                                        float(lay.horizon[i]), len(pids),
                                        fixed_occ.get(int(lay.cams[i]), empty),
                                        occ_probs)
        lay.pids.append(pids)
        lay.full.append(full)
        lay.boxes.append(boxes)
        lay.hard.append(hard)
        lay.occluders.append(occ)


def _split_assign(rng: np.random.Generator, lay: _Layout, ppi: Tuple[int, int],
                  train_pids: np.ndarray, train_sets: List[np.ndarray],
                  test_pids: np.ndarray,
                  test_sets: List[np.ndarray]) -> List[List[int]]:
    N = len(lay.names)
    caps = rng.integers(ppi[0], ppi[1] + 1, N)
    members: List[List[int]] = [[] for _ in range(N)]
    for test, pids, sets in ((False, train_pids, train_sets), (True, test_pids,
                                                               test_sets)):
        idx = np.flatnonzero(lay.is_test == test)
        local = _assign(rng, idx, lay.cams[idx], caps[idx], pids, sets)
        for k, m in zip(idx, local):
            members[int(k)] = m
    return members


def _pid_index(lay: _Layout) -> Dict[int, List[Tuple[int, int]]]:
    index: Dict[int, List[Tuple[int, int]]] = {}
    for i, p in enumerate(lay.pids):
        for j, pid in enumerate(p.tolist()):
            if pid > 0:
                index.setdefault(pid, []).append((i, j))
    return index


def _xywh(box: np.ndarray) -> List[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _truth_images(lay: _Layout) -> Dict[str, dict]:
    images = {}
    for i, name in enumerate(lay.names):
        images[name] = dict(boxes=lay.boxes[i].astype(np.float64),
                            pids=lay.pids[i].astype(np.int64),
                            split='test' if lay.is_test[i] else 'train',
                            cam=int(lay.cams[i]),
                            height=lay.height,
                            width=lay.width)
    return images


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------


def _render_all(lay: _Layout, seed: int, num_ids: int, img_dir: str,
                per_camera_background: bool) -> None:
    os.makedirs(img_dir, exist_ok=True)
    H, W = lay.height, lay.width
    id_app = sample_appearances(np.random.default_rng([seed, 1]), num_ids + 1)
    keys = list(id_app)
    styles = {}
    backgrounds = {}
    for i, name in enumerate(lay.names):
        rng = np.random.default_rng([seed, 2, i])
        s = int(lay.styles[i])
        if s not in styles:
            styles[s] = sample_camera_style(np.random.default_rng([seed, 3,
                                                                   s]))
        if per_camera_background:
            if s not in backgrounds:
                backgrounds[s] = make_background(
                    np.random.default_rng([seed, 4, s]), H, W,
                    float(lay.horizon[i]))
            bg = backgrounds[s]
        else:
            bg = make_background(rng, H, W, float(lay.horizon[i]))
        pids = lay.pids[i]
        unl = sample_appearances(rng, int((pids < 0).sum()))
        apps, u = [], 0
        for pid in pids.tolist():
            if pid > 0:
                apps.append({k: int(id_app[k][pid]) for k in keys})
            else:
                apps.append({k: int(unl[k][u]) for k in keys})
                u += 1
        img = render_scene(bg, lay.full[i], apps, lay.occluders[i], styles[s],
                           rng)
        cv2.imwrite(osp.join(img_dir, name), img,
                    [cv2.IMWRITE_JPEG_QUALITY, 90])


# --------------------------------------------------------------------------
# CUHK-SYSU
# --------------------------------------------------------------------------


def _write_var(path: str, name: str, mclass: int, dims: Sequence[int],
               chunks: List[bytes]) -> None:
    mat5.write_mat_stream(path, name, mclass, dims,
                          sum(len(c) for c in chunks), chunks)


def _write_cuhk_images(path: str, lay: _Layout) -> None:
    box_prefix = mat5.struct_body_prefix(['idlocate', 'ishard'])
    chunks = [mat5.struct_body_prefix(['imname', 'nAppear', 'box'])]
    for i, name in enumerate(lay.names):
        boxes, hard = lay.boxes[i], lay.hard[i]
        body = [box_prefix]
        for b, hd in zip(boxes, hard.tolist()):
            body.append(mat5.encode_row(_xywh(b)))
            body.append(mat5.encode_double(float(hd)))
        chunks.append(mat5.encode_char(name))
        chunks.append(mat5.encode_double(float(len(boxes))))
        chunks.append(
            mat5.matrix(mat5.MX_STRUCT, (1, len(boxes)), b''.join(body)))
    _write_var(path, 'Img', mat5.MX_STRUCT, (1, len(lay.names)), chunks)


def _write_cuhk_train(path: str, lay: _Layout, train_pids: np.ndarray,
                      index: Dict[int, List[Tuple[int, int]]]) -> None:
    id_prefix = mat5.struct_body_prefix(['idname', 'nAppear', 'scene'])
    scene_prefix = mat5.struct_body_prefix(['imname', 'idlocate', 'ishard'])
    chunks = []
    for pid in train_pids.tolist():
        apps = index[pid]
        scene = [scene_prefix]
        for i, j in apps:
            scene.append(mat5.encode_char(lay.names[i]))
            scene.append(mat5.encode_row(_xywh(lay.boxes[i][j])))
            scene.append(mat5.encode_double(float(lay.hard[i][j])))
        body = (id_prefix + mat5.encode_char(f'p{pid}') +
                mat5.encode_double(float(len(apps))) +
                mat5.matrix(mat5.MX_STRUCT, (1, len(apps)), b''.join(scene)))
        chunks.append(mat5.matrix(mat5.MX_STRUCT, (1, 1), body))
    _write_var(path, 'Train', mat5.MX_CELL, (len(train_pids), 1), chunks)


def _cuhk_protocol(rng: np.random.Generator, lay: _Layout,
                   test_pids: np.ndarray, num_queries: int,
                   index: Dict[int, List[Tuple[int, int]]]) -> List[dict]:
    """Queries (random order) with their target entries and distractor
    permutations (test image indices)."""
    test_idx = np.flatnonzero(lay.is_test)
    qpids = np.sort(rng.choice(test_pids, num_queries, replace=False))
    qpids = qpids[rng.permutation(num_queries)]
    protos = []
    for pid in qpids.tolist():
        apps = index[pid]
        easy = [a for a in apps if not lay.hard[a[0]][a[1]]]
        pool = easy if easy else apps
        qi, qj = pool[int(rng.integers(len(pool)))]
        targets = sorted((i, j) for i, j in apps if i != qi)
        contain = np.zeros(len(lay.names), dtype=bool)
        contain[[i for i, _ in apps]] = True
        others = test_idx[~contain[test_idx]]
        protos.append(
            dict(pid=pid,
                 img=qi,
                 box=qj,
                 targets=targets,
                 distractors=others[rng.permutation(len(others))]))
    return protos


class _GalleryEntries:
    """Encoded distractor gallery entries (``imname``, empty ``idlocate``,
    ``ishard`` 0) of every test image, by image index."""

    def __init__(self, lay: _Layout):
        empty = mat5.encode_double(np.zeros((0, 0))) + mat5.encode_double(0.0)
        self.entries: List[Optional[bytes]] = [None] * len(lay.names)
        self.lengths = np.zeros(len(lay.names), dtype=np.int64)
        for i in np.flatnonzero(lay.is_test).tolist():
            self.entries[i] = mat5.encode_char(lay.names[i]) + empty
            self.lengths[i] = len(self.entries[i])


def _write_cuhk_testg(path: str, S: int, lay: _Layout, protos: List[dict],
                      entries: _GalleryEntries) -> List[List[str]]:
    """Write ``TestG{S}.mat`` and return its galleries.

    A gallery holds the target's other images and then distractors, S entries
    in all (or every test image but the query's when there are fewer).
    """
    qprefix = mat5.struct_body_prefix(
        ['imname', 'idlocate', 'ishard', 'idname'])
    gprefix = mat5.struct_body_prefix(['imname', 'idlocate', 'ishard'])
    top = mat5.struct_body_prefix(['Query', 'Gallery'])
    names = lay.names
    galleries, parts, total = [], [], len(top)
    for p in protos:
        i, j = p['img'], p['box']
        q = mat5.matrix(
            mat5.MX_STRUCT, (1, 1), qprefix + mat5.encode_char(names[i]) +
            mat5.encode_row(_xywh(lay.boxes[i][j])) +
            mat5.encode_double(float(lay.hard[i][j])) +
            mat5.encode_char(f"p{p['pid']}"))
        tgt = b''.join(
            mat5.encode_char(names[ti]) +
            mat5.encode_row(_xywh(lay.boxes[ti][tj])) +
            mat5.encode_double(float(lay.hard[ti][tj]))
            for ti, tj in p['targets'])
        nt = len(p['targets'])
        size = min(S, nt + len(p['distractors']))
        dis = p['distractors'][:size - nt]
        body_len = len(gprefix) + len(tgt) + int(entries.lengths[dis].sum())
        head = q + mat5.matrix_prefix(mat5.MX_STRUCT,
                                      (1, size), body_len) + gprefix + tgt
        dis = dis.tolist()
        parts.append((head, dis))
        total += len(head) + body_len - len(gprefix) - len(tgt)
        galleries.append([names[ti] for ti, _ in p['targets']] +
                         list(map(names.__getitem__, dis)))

    def chunks():
        yield top
        get = entries.entries.__getitem__
        for head, dis in parts:
            yield head + b''.join(map(get, dis))

    # level 1: these files are large (~200 bytes per gallery entry)
    mat5.write_mat_stream(path,
                          f'TestG{S}',
                          mat5.MX_STRUCT, (1, len(protos)),
                          total,
                          chunks(),
                          level=1)
    return galleries


def make_synthetic_cuhk_sysu(
    out_dir: str,
    seed: int = 0,
    num_images: int = 120,
    num_test_images: Optional[int] = None,
    num_ids: int = 40,
    num_test_ids: Optional[int] = None,
    num_queries: Optional[int] = None,
    persons_per_image: Tuple[int, int] = (2, 5),
    num_unlabeled_per_image: Tuple[int, int] = (0, 2),
    image_size: Tuple[int, int] = (240, 400),
    annotations_only: bool = False,
    gallery_sizes: Sequence[int] = (50, 100, 500, 1000, 2000, 4000)
) -> SyntheticTruth:
    """Write a synthetic dataset in the native CUHK-SYSU layout.

    Files: ``Image/SSM/s{k}.jpg``; ``annotation/Images.mat`` (``Img``),
    ``annotation/pool.mat`` (``pool``),
    ``annotation/test/train_test/Train.mat`` (``Train``) and
    ``annotation/test/train_test/TestG{S}.mat`` (``TestG{S}``) for each S of
    ``gallery_sizes`` with ``max targets <= S <= num_test_images - 1``. When no
    size fits because the test split is too small, ``TestG{S}.mat`` of the
    smallest larger S is still written, with every test image (but the query's)
    in each gallery, i.e. ``num_test_images - 1`` entries instead of S.

    Args:
        out_dir (str): Dataset root (created).
        seed (int): Random seed; the same seed gives byte-identical
            annotation files.
        num_images (int): Images in all.
        num_test_images (int, optional): Test (pool) images; 40 % if None.
        num_ids (int): Identities in all.
        num_test_ids (int, optional): Test identities; 40 % if None.
        num_queries (int, optional): Queries (<= num_test_ids), one per test
            identity if None.
        persons_per_image (tuple[int, int]): Inclusive range of labeled people
            per image (each identity still appears in >= 2 images of its
            split).
        num_unlabeled_per_image (tuple[int, int]): Inclusive range of
            unlabeled people per image.
        image_size (tuple[int, int]): (height, width).
        annotations_only (bool): Skip drawing the images.
        gallery_sizes (Sequence[int]): Protocol gallery sizes to write.

    Returns:
        SyntheticTruth: The ground truth that was written.
    """
    num_test_images = _count(num_test_images, num_images)
    num_test_ids = _count(num_test_ids, num_ids)
    num_queries = num_test_ids if num_queries is None else int(num_queries)
    _check_sizes(num_images, num_test_images, num_ids, num_test_ids,
                 image_size)
    if not 2 <= num_queries <= num_test_ids:
        raise ValueError(f'need 2 <= num_queries <= num_test_ids '
                         f'({num_test_ids}), got {num_queries}')
    ppi = _check_range('persons_per_image', persons_per_image)
    unl = _check_range('num_unlabeled_per_image', num_unlabeled_per_image)
    H, W = (int(v) for v in image_size)
    rng = np.random.default_rng(seed)

    N = num_images
    is_test = np.zeros(N, dtype=bool)
    is_test[rng.choice(N, num_test_images, replace=False)] = True
    lay = _Layout(height=H,
                  width=W,
                  names=[f's{k}.jpg' for k in range(1, N + 1)],
                  is_test=is_test,
                  cams=np.zeros(N, dtype=np.int64),
                  styles=rng.integers(0, CUHK_NUM_STYLES, N),
                  horizon=rng.uniform(0.25, 0.4, N) * H)
    perm = rng.permutation(np.arange(1, num_ids + 1))
    test_pids = np.sort(perm[:num_test_ids])
    train_pids = np.sort(perm[num_test_ids:])
    zero = np.zeros(1, dtype=np.int64)
    members = _split_assign(rng, lay, ppi, train_pids,
                            [zero] * len(train_pids), test_pids,
                            [zero] * len(test_pids))
    _layout_people(rng, lay, members, unl, {}, (0.5, 0.35, 0.15))
    index = _pid_index(lay)
    protos = _cuhk_protocol(rng, lay, test_pids, num_queries, index)

    ann = osp.join(out_dir, 'annotation')
    proto_dir = osp.join(ann, 'test', 'train_test')
    os.makedirs(proto_dir, exist_ok=True)
    _write_cuhk_images(osp.join(ann, 'Images.mat'), lay)
    test_names = [n for n, t in zip(lay.names, is_test) if t]
    pool = np.empty((len(test_names), 1), dtype=object)
    pool[:, 0] = test_names
    mat5.write_mat(osp.join(ann, 'pool.mat'), {'pool': pool})
    _write_cuhk_train(osp.join(proto_dir, 'Train.mat'), lay, train_pids, index)

    max_targets = max(len(p['targets']) for p in protos)
    sizes = sorted({int(s) for s in gallery_sizes})
    fit = [s for s in sizes if max_targets <= s <= num_test_images - 1]
    if not fit:
        larger = [s for s in sizes if s > num_test_images - 1]
        if not larger:
            raise ValueError(
                f'no gallery size of {sizes} fits: an identity is in '
                f'{max_targets + 1} test images, there are {num_test_images}')
        fit = larger[:1]
    entries = _GalleryEntries(lay)
    # zlib releases the GIL: write the protocol files two at a time
    with ThreadPoolExecutor(max_workers=2) as pool:
        galleries = dict(
            zip(
                fit,
                pool.map(
                    lambda S: _write_cuhk_testg(
                        osp.join(proto_dir, f'TestG{S}.mat'), S, lay, protos,
                        entries), fit)))

    truth = SyntheticTruth(
        root=out_dir,
        dataset='cuhk-sysu',
        images=_truth_images(lay),
        train_images=[n for n, t in zip(lay.names, is_test) if not t],
        test_images=test_names,
        queries=[
            dict(img=lay.names[p['img']],
                 box=lay.boxes[p['img']][p['box']].astype(np.float64),
                 pid=p['pid']) for p in protos
        ],
        galleries=galleries)
    if not annotations_only:
        _render_all(lay,
                    seed,
                    num_ids,
                    osp.join(out_dir, 'Image', 'SSM'),
                    per_camera_background=False)
    return truth


# --------------------------------------------------------------------------
# PRW
# --------------------------------------------------------------------------


def _prw_frames(rng: np.random.Generator, N: int, T: int, C: int):
    """Frame names, cameras and test flags (names in cam, seq, frame order)."""
    n_cam = np.full(C, N // C)
    n_cam[rng.choice(C, N % C, replace=False)] += 1
    t_cam = (T * n_cam) // N
    rest = T - int(t_cam.sum())
    room = np.flatnonzero(t_cam < n_cam)
    t_cam[rng.choice(room, rest, replace=False)] += 1
    names, cams, is_test = [], [], []
    for c in range(C):
        n = int(n_cam[c])
        n_seq = max(1, min(6, 1 + n // 15))
        seq_sizes = np.full(n_seq, n // n_seq)
        seq_sizes[:n % n_seq] += 1
        for s in range(n_seq):
            steps = rng.integers(1, 5, int(seq_sizes[s])) * 25
            frames = int(rng.integers(1, 100)) + np.cumsum(steps)
            names += [f'c{c + 1}s{s + 1}_{f:06d}.jpg' for f in frames]
        flags = np.zeros(n, dtype=bool)
        flags[rng.choice(n, int(t_cam[c]), replace=False)] = True
        cams += [c + 1] * n
        is_test.append(flags)
    return names, np.array(cams, dtype=np.int64), np.concatenate(is_test)


def make_synthetic_prw(out_dir: str,
                       seed: int = 0,
                       num_images: int = 120,
                       num_test_images: Optional[int] = None,
                       num_ids: int = 40,
                       num_test_ids: Optional[int] = None,
                       num_queries: Optional[int] = None,
                       num_cameras: int = 6,
                       persons_per_image: Tuple[int, int] = (2, 5),
                       num_unlabeled_per_image: Tuple[int, int] = (0, 2),
                       image_size: Tuple[int, int] = (240, 400),
                       annotations_only: bool = False) -> SyntheticTruth:
    """Write a synthetic dataset in the native PRW layout.

    Files: ``frames/c{cam}s{seq}_{frame:06d}.jpg``;
    ``annotations/<frame>.jpg.mat`` (``box_new``, or ``anno_file`` for ~10 %
    of the frames as in the original release: n×5 ``[pid, x, y, w, h]``, pid
    -2 for unlabeled people); ``frame_train.mat`` (``img_index_train``),
    ``frame_test.mat`` (``img_index_test``), names without ``.jpg``; and
    ``query_info.txt`` (``pid x y w h frame`` with CRLF line ends).

    Every identity is seen by >= 2 cameras; there is one query per (test
    identity, camera) pair.

    Args:
        out_dir (str): Dataset root (created).
        seed (int): Random seed; the same seed gives byte-identical
            annotation files.
        num_images (int): Frames in all.
        num_test_images (int, optional): Test frames; 40 % if None.
        num_ids (int): Identities in all.
        num_test_ids (int, optional): Test identities; 40 % if None.
        num_queries (int, optional): Queries, i.e. the total number of cameras
            over the test identities (between 2 and ``num_cameras`` per
            identity); random camera sets if None.
        num_cameras (int): Cameras (>= 2).
        persons_per_image (tuple[int, int]): Inclusive range of labeled people
            per frame.
        num_unlabeled_per_image (tuple[int, int]): Inclusive range of
            unlabeled people per frame.
        image_size (tuple[int, int]): (height, width).
        annotations_only (bool): Skip drawing the images.

    Returns:
        SyntheticTruth: The ground truth that was written.
    """
    num_test_images = _count(num_test_images, num_images)
    num_test_ids = _count(num_test_ids, num_ids)
    _check_sizes(num_images, num_test_images, num_ids, num_test_ids,
                 image_size)
    C = int(num_cameras)
    if C < 2:
        raise ValueError(f'num_cameras must be >= 2, got {num_cameras}')
    ppi = _check_range('persons_per_image', persons_per_image)
    unl = _check_range('num_unlabeled_per_image', num_unlabeled_per_image)
    H, W = (int(v) for v in image_size)
    rng = np.random.default_rng(seed)

    names, cams, is_test = _prw_frames(rng, num_images, num_test_images, C)
    horizon_cam = rng.uniform(0.25, 0.4, C + 1) * H
    lay = _Layout(height=H,
                  width=W,
                  names=names,
                  is_test=is_test,
                  cams=cams,
                  styles=cams.copy(),
                  horizon=horizon_cam[cams])
    perm = rng.permutation(np.arange(1, num_ids + 1))
    test_pids = np.sort(perm[:num_test_ids])
    train_pids = np.sort(perm[num_test_ids:])
    test_cams = np.unique(cams[is_test])
    train_cams = np.unique(cams[~is_test])
    if len(test_cams) < 2:
        raise ValueError('the test frames must come from >= 2 cameras; use '
                         'more test frames')
    train_sets = _cam_sets(rng, len(train_pids), train_cams)
    test_sets = _cam_sets(rng, len(test_pids), test_cams, num_queries)
    members = _split_assign(rng, lay, ppi, train_pids, train_sets, test_pids,
                            test_sets)
    fixed_occ = {}
    for c in range(1, C + 1):  # a lamp post in most cameras
        if rng.random() < 0.7:
            pw = max(3, int(round(rng.uniform(0.012, 0.025) * W)))
            px = int(rng.integers(0, W - pw))
            fixed_occ[c] = np.array([[
                0, px,
                int(rng.uniform(0, 0.3) * H), px + pw,
                int(rng.uniform(0.7, 1.0) * H)
            ]])
    _layout_people(rng, lay, members, unl, fixed_occ, (0.7, 0.3))
    index = _pid_index(lay)
    queries = []
    for pid, cset in zip(test_pids.tolist(), test_sets):
        apps = index[pid]
        for c in cset.tolist():
            here = [a for a in apps if lay.cams[a[0]] == c]
            i, j = here[int(rng.integers(len(here)))]
            queries.append((pid, i, j))
    anno_key = np.where(rng.random(len(names)) < 0.1, 'anno_file', 'box_new')

    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    for i, name in enumerate(names):
        b = lay.boxes[i]
        pid = np.where(lay.pids[i] > 0, lay.pids[i], -2)
        arr = np.column_stack([pid, b[:, :2], b[:, 2:] - b[:, :2]])
        mat5.write_mat(osp.join(ann_dir, name + '.mat'),
                       {str(anno_key[i]): arr.astype(np.float64)},
                       compress=False)
    train_names = [n for n, t in zip(names, is_test) if not t]
    test_names = [n for n, t in zip(names, is_test) if t]
    for fname, var, lst in (('frame_train.mat', 'img_index_train',
                             train_names), ('frame_test.mat', 'img_index_test',
                                            test_names)):
        cell = np.empty((len(lst), 1), dtype=object)
        cell[:, 0] = [n[:-4] for n in lst]
        mat5.write_mat(osp.join(out_dir, fname), {var: cell}, compress=False)
    lines = []
    for pid, i, j in queries:
        x1, y1, x2, y2 = lay.boxes[i][j].tolist()
        lines.append(
            f'{pid} {x1} {y1} {x2 - x1} {y2 - y1} {names[i][:-4]}\r\n')
    with open(osp.join(out_dir, 'query_info.txt'), 'wb') as f:
        f.write(''.join(lines).encode('ascii'))

    truth = SyntheticTruth(root=out_dir,
                           dataset='prw',
                           images=_truth_images(lay),
                           train_images=train_names,
                           test_images=test_names,
                           queries=[
                               dict(img=names[i],
                                    box=lay.boxes[i][j].astype(np.float64),
                                    pid=pid) for pid, i, j in queries
                           ],
                           galleries={})
    if not annotations_only:
        _render_all(lay,
                    seed,
                    num_ids,
                    osp.join(out_dir, 'frames'),
                    per_camera_background=True)
    return truth

# Copyright (c) OpenMMLab. All rights reserved.
"""One picture of a person search result: the query, then its ranked hits."""
from typing import Any, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np

#: Box / frame colours (BGR).
QUERY_COLOR = (255, 128, 0)
CORRECT_COLOR = (0, 180, 0)
WRONG_COLOR = (0, 0, 230)
UNKNOWN_COLOR = (0, 200, 255)
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)

_FONT = cv2.FONT_HERSHEY_SIMPLEX

ImageType = Union[str, np.ndarray]


def _field(hit: Any, name: str, default: Any = None) -> Any:
    """``hit.name`` or ``hit[name]`` (a SearchHit or a dict)."""
    if isinstance(hit, dict):
        return hit.get(name, default)
    return getattr(hit, name, default)


def _read(img: ImageType, what: str) -> np.ndarray:
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        return img
    out = mmcv.imread(img)
    if out is None:
        raise FileNotFoundError(f'{what} not readable: {img}')
    return out


def _resize_to_height(img: np.ndarray, height: int) -> Tuple[np.ndarray,
                                                            float]:
    scale = height / max(img.shape[0], 1)
    width = max(1, int(round(img.shape[1] * scale)))
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA
                      if scale < 1 else cv2.INTER_LINEAR), scale


def _box_ints(box: Sequence[float], scale: float, shape) -> List[int]:
    x1, y1, x2, y2 = (float(v) * scale for v in box)
    h, w = shape[:2]
    return [
        int(np.clip(round(x1), 0, w - 1)), int(np.clip(round(y1), 0, h - 1)),
        int(np.clip(round(x2), 0, w - 1)), int(np.clip(round(y2), 0, h - 1))
    ]


def _panel(img: np.ndarray, lines: Sequence[str], color: Optional[tuple],
           font_scale: float, frame: int) -> np.ndarray:
    """An image under a header of text lines, framed in ``color``."""
    thickness = max(1, int(round(font_scale * 2)))
    sizes = [cv2.getTextSize(t, _FONT, font_scale, thickness) for t in lines]
    line_h = max([s[0][1] + s[1] for s in sizes] + [1]) + 4
    text_w = max([s[0][0] for s in sizes] + [0]) + 8
    width = max(img.shape[1], text_w) + 2 * frame
    header = line_h * len(lines) + 4
    canvas = np.full((header + img.shape[0] + 2 * frame, width, 3),
                     BACKGROUND, np.uint8)
    if color is not None and frame:
        canvas[header:, :] = color
    x0 = (width - img.shape[1]) // 2
    canvas[header + frame:header + frame + img.shape[0],
           x0:x0 + img.shape[1]] = img
    for i, text in enumerate(lines):
        y = 2 + line_h * (i + 1) - 4
        cv2.putText(canvas, text, (4, y), _FONT, font_scale, TEXT_COLOR,
                    thickness, cv2.LINE_AA)
    return canvas


def draw_search_result(query_img: ImageType,
                       query_box: Sequence[float],
                       hits: Sequence[Any],
                       correct: Optional[Sequence[Optional[bool]]] = None,
                       height: int = 240,
                       query_mode: str = 'crop',
                       query_label: Optional[str] = None,
                       font_scale: float = 0.5,
                       gap: int = 8,
                       out_file: Optional[str] = None) -> np.ndarray:
    """Draw a query and its ranked gallery hits side by side, in one image.

    From the left: the query (its crop, or its image with the box), then
    each hit: its gallery image resized to ``height`` with the hit box drawn
    and a header ``#rank sim <similarity>`` / ``det <score>``. When
    ``correct`` is given, a hit is framed and boxed in green (correct) or
    red (wrong); unknown (None) hits in amber.

    Args:
        query_img (str or np.ndarray): Query image file or BGR array.
        query_box (Sequence[float]): ``x1, y1, x2, y2`` in its pixels.
        hits (Sequence): Best first; each a :class:`mmps.apis.SearchHit` or
            a dict with ``box``, ``similarity``, ``img_path`` (or ``img``, a
            BGR array) and optionally ``rank`` and ``score``.
        correct (Sequence[bool | None], optional): Per hit, whether it
            shows the query's identity. Defaults to None (unknown).
        height (int): Height of every image in the picture. Defaults to 240.
        query_mode (str): ``'crop'`` (the query person, resized to
            ``height``) or ``'image'`` (the query image with its box).
            Defaults to ``'crop'``.
        query_label (str, optional): A second header line of the query
            (e.g. ``'pid 3'``).
        font_scale (float): Header text size. Defaults to 0.5.
        gap (int): Pixels between panels. Defaults to 8.
        out_file (str, optional): Also write the picture there (folders are
            created).

    Returns:
        np.ndarray: The picture, uint8 BGR.
    """
    if query_mode not in ('crop', 'image'):
        raise ValueError(f"query_mode must be 'crop' or 'image', got "
                         f'{query_mode!r}')
    if correct is not None and len(correct) != len(hits):
        raise ValueError(f'correct has {len(correct)} entries for '
                         f'{len(hits)} hits')
    height = int(height)
    frame = 3
    img = _read(query_img, 'query image')
    x1, y1, x2, y2 = _box_ints(query_box, 1.0, img.shape)
    if query_mode == 'crop':
        crop = img[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
        qimg, _ = _resize_to_height(crop, height)
    else:
        qimg, scale = _resize_to_height(img, height)
        qx1, qy1, qx2, qy2 = _box_ints(query_box, scale, qimg.shape)
        cv2.rectangle(qimg, (qx1, qy1), (qx2, qy2), QUERY_COLOR, 2)
    lines = ['query'] + ([query_label] if query_label else [''])
    panels = [_panel(qimg, lines, QUERY_COLOR, font_scale, frame)]

    for i, hit in enumerate(hits):
        ok = None if correct is None else correct[i]
        color = UNKNOWN_COLOR if ok is None else (
            CORRECT_COLOR if ok else WRONG_COLOR)
        src = _field(hit, 'img')
        src = _field(hit, 'img_path') if src is None else src
        gimg, scale = _resize_to_height(_read(src, 'gallery image'), height)
        bx1, by1, bx2, by2 = _box_ints(_field(hit, 'box'), scale, gimg.shape)
        cv2.rectangle(gimg, (bx1, by1), (bx2, by2), color, 2)
        rank = _field(hit, 'rank', i + 1)
        score = _field(hit, 'score')
        lines = [f'#{rank} sim {float(_field(hit, "similarity")):.3f}',
                 '' if score is None else f'det {float(score):.2f}']
        panels.append(_panel(gimg, lines, color if ok is not None else None,
                             font_scale, frame))
    if not hits:
        empty = np.full((height, height // 2, 3), BACKGROUND, np.uint8)
        panels.append(_panel(empty, ['no hit', ''], None, font_scale, frame))

    full_h = max(p.shape[0] for p in panels)
    spacer = np.full((full_h, gap, 3), BACKGROUND, np.uint8)
    row = []
    for j, p in enumerate(panels):
        if p.shape[0] < full_h:
            pad = np.full((full_h - p.shape[0], p.shape[1], 3), BACKGROUND,
                          np.uint8)
            p = np.concatenate([p, pad])
        row += [spacer, p] if j else [p]
    picture = np.ascontiguousarray(np.concatenate(row, axis=1))
    if out_file is not None:
        mmcv.imwrite(picture, out_file)
    return picture

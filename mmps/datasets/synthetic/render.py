# Copyright (c) OpenMMLab. All rights reserved.
"""Drawing of the synthetic scenes: backgrounds, people, occluders, cameras.

Everything here is pure NumPy + OpenCV and deterministic given the
``np.random.Generator`` passed in. The geometry (where people and occluders
are) comes from :mod:`.generator`; this module only decides how they look.
"""
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

# Colours are BGR.
UPPER_COLORS = np.array([(40, 40, 200), (30, 30, 120), (30, 140, 240),
                         (40, 210, 230), (60, 160, 60), (40, 90, 30),
                         (160, 160, 40), (220, 170, 90), (180, 80, 30),
                         (90, 40, 20), (140, 50, 120), (180, 120, 230),
                         (235, 235, 235), (170, 170, 170), (35, 35, 35),
                         (40, 70, 110), (150, 190, 210)],
                        dtype=np.float32)
LOWER_COLORS = np.array([(30, 30, 30), (80, 40, 20), (150, 100, 60),
                         (110, 110, 110), (120, 160, 180), (40, 60, 90),
                         (225, 225, 225), (40, 80, 40), (50, 40, 150)],
                        dtype=np.float32)
SKIN_COLORS = np.array([(180, 200, 240), (150, 180, 225), (110, 150, 200),
                        (80, 110, 160), (50, 70, 110)],
                       dtype=np.float32)
HAIR_COLORS = np.array([(20, 20, 20), (30, 40, 60), (40, 70, 110),
                        (100, 170, 210), (160, 160, 160), (30, 30, 90)],
                       dtype=np.float32)
SHOE_COLORS = np.array([(20, 20, 20), (230, 230, 230), (60, 60, 60),
                        (40, 60, 90)],
                       dtype=np.float32)
ACCESSORY_COLORS = np.array([(30, 30, 30), (40, 70, 120), (200, 60, 40),
                             (40, 40, 180), (200, 200, 200), (60, 140, 60),
                             (40, 180, 220), (130, 50, 130)],
                            dtype=np.float32)

#: torso patterns
PLAIN, H_STRIPES, V_STRIPES, CHECKS, OPEN_JACKET = range(5)
#: lower-body garments
TROUSERS, SHORTS, SKIRT = range(3)

_SHIFT = 3  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT

APPEARANCE_FIELDS = ('skin', 'hair', 'long_hair', 'upper', 'upper2', 'pattern',
                     'short_sleeves', 'lower', 'lower_type', 'shoes', 'hat',
                     'bag', 'bag_color', 'backpack')


def sample_appearances(rng: np.random.Generator,
                       n: int) -> Dict[str, np.ndarray]:
    """Sample ``n`` person appearances (structure of arrays).

    Identities differ by combinations of attributes drawn from small palettes,
    so many identities share some colours or accessories.

    Args:
        rng (np.random.Generator): Random generator.
        n (int): Number of appearances.

    Returns:
        dict[str, np.ndarray]: One int array of length ``n`` per field of
        :data:`APPEARANCE_FIELDS` (``hat`` and ``backpack`` are -1 for none,
        ``bag`` is 0 none / 1 left / 2 right).
    """
    nu = len(UPPER_COLORS)
    upper = rng.integers(0, nu, n)
    a = dict(
        skin=rng.integers(0, len(SKIN_COLORS), n),
        hair=rng.integers(0, len(HAIR_COLORS), n),
        long_hair=(rng.random(n) < 0.3).astype(np.int64),
        upper=upper,
        upper2=(upper + rng.integers(1, nu, n)) % nu,
        pattern=rng.choice(5, n, p=[0.4, 0.17, 0.15, 0.13, 0.15]),
        short_sleeves=(rng.random(n) < 0.35).astype(np.int64),
        lower=rng.integers(0, len(LOWER_COLORS), n),
        lower_type=rng.choice(3, n, p=[0.7, 0.15, 0.15]),
        shoes=rng.integers(0, len(SHOE_COLORS), n),
        hat=np.where(
            rng.random(n) < 0.25, rng.integers(0, len(ACCESSORY_COLORS), n),
            -1),
        bag=rng.choice(3, n, p=[0.6, 0.2, 0.2]),
        bag_color=rng.integers(0, len(ACCESSORY_COLORS), n),
        backpack=np.where(
            rng.random(n) < 0.2, rng.integers(0, len(ACCESSORY_COLORS), n),
            -1),
    )
    return a


def sample_camera_style(rng: np.random.Generator) -> np.ndarray:
    """A colour cast: 3×4 matrix for :func:`cv2.transform` (mix + bias)."""
    m = np.diag(rng.uniform(0.78, 1.22, 3)) + rng.normal(0, 0.05, (3, 3))
    m *= rng.uniform(0.85, 1.1)  # brightness
    bias = rng.uniform(-18, 18, 3) + rng.uniform(-12, 12)
    return np.concatenate([m, bias[:, None]], axis=1).astype(np.float32)


def make_background(rng: np.random.Generator, height: int, width: int,
                    horizon: float) -> np.ndarray:
    """A textured street-like background.

    Args:
        rng (np.random.Generator): Random generator.
        height (int): Image height.
        width (int): Image width.
        horizon (float): y of the horizon (wall above, ground below).

    Returns:
        np.ndarray: uint8 BGR image.
    """
    H, W = height, width
    hz = int(round(horizon))
    wall = rng.uniform(60, 200, 3)
    ground = rng.uniform(70, 170, 1) + rng.uniform(-15, 15, 3)
    ys = np.arange(H, dtype=np.float32)[:, None, None]
    top = (0.75 + 0.35 * ys / max(hz, 1)) * wall
    bot = (0.85 + 0.25 * (ys - hz) / max(H - hz, 1)) * ground
    col = np.where(ys < hz, top, bot).astype(np.float32)  # (H, 1, 3)
    img = np.broadcast_to(col, (H, W, 3))
    blot = (rng.normal(0, 14,
                       (4, 6, 1)) + rng.normal(0, 6,
                                               (4, 6, 3))).astype(np.float32)
    img = img + cv2.resize(blot, (W, H), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    s = H / 240.0
    # buildings / shop fronts with windows
    for _ in range(int(rng.integers(2, 6))):
        x1 = int(rng.integers(-W // 8, W))
        bw = int(rng.uniform(0.12, 0.4) * W)
        y1 = int(rng.uniform(0, 0.6) * hz)
        c = tuple(float(v) for v in rng.uniform(40, 220, 3))
        cv2.rectangle(img, (x1, y1), (x1 + bw, hz), c, -1)
        if rng.random() < 0.7:
            wc = tuple(float(v) * 0.45 for v in c)
            step = max(6, int(rng.uniform(10, 22) * s))
            win = max(2, step // 2)
            for yy in range(y1 + win // 2, hz - win, step):
                for xx in range(x1 + win // 2, x1 + bw - win, step):
                    cv2.rectangle(img, (xx, yy), (xx + win, yy + win), wc, -1)
    # trees
    for _ in range(int(rng.integers(0, 3))):
        x = int(rng.integers(0, W))
        r = int(rng.uniform(10, 28) * s)
        cv2.line(img, (x, hz), (x, hz - 2 * r), (40, 60, 90), max(2, r // 4))
        g = tuple(float(v) for v in rng.uniform([20, 90, 20], [70, 170, 80]))
        cv2.circle(img, (x, hz - 2 * r), r, g, -1)
    # ground markings (kerb line, crossing stripes)
    kerb = hz + int(rng.uniform(0.02, 0.12) * H)
    cv2.line(img, (0, kerb), (W, kerb + int(rng.uniform(-0.05, 0.05) * H)),
             tuple(float(v) for v in rng.uniform(150, 230, 3)),
             max(1, int(2 * s)))
    if rng.random() < 0.5:
        y = int(rng.uniform(hz + 0.3 * (H - hz), H - 6 * s))
        sw = max(4, int(rng.uniform(12, 24) * s))
        for x in range(int(rng.integers(0, sw)), W, 2 * sw):
            cv2.rectangle(img, (x, y), (x + sw, y + max(3, int(6 * s))),
                          (215, 215, 215), -1)
    return img


def _c(color: np.ndarray, f: float = 1.0) -> Tuple[float, float, float]:
    return tuple(float(v) for v in np.clip(color * f, 0, 255))


def _pattern(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, kind: int,
             period: int, color) -> None:
    """Overlay a torso pattern on a rectangle (anchored at x1, y1)."""
    H, W = img.shape[:2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, W), min(y2, H)
    if cx2 <= cx1 or cy2 <= cy1:
        return
    yy = np.arange(cy1 - y1, cy2 - y1)[:, None]
    xx = np.arange(cx1 - x1, cx2 - x1)[None, :]
    p = max(2, period)
    if kind == H_STRIPES:
        mask = np.broadcast_to((yy // (p // 2 or 1)) % 2 == 1,
                               (len(yy), xx.shape[1]))
    elif kind == V_STRIPES:
        mask = np.broadcast_to((xx // (p // 2 or 1)) % 2 == 1,
                               (len(yy), xx.shape[1]))
    elif kind == CHECKS:
        mask = ((yy // p) + (xx // p)) % 2 == 1
    elif kind == OPEN_JACKET:
        w = x2 - x1
        mask = np.broadcast_to((xx >= int(0.35 * w)) & (xx < int(0.65 * w)),
                               (len(yy), xx.shape[1]))
    else:
        return
    roi = img[cy1:cy2, cx1:cx2]
    roi[mask] = np.asarray(color, dtype=np.float64).round().astype(np.uint8)


def draw_person(img: np.ndarray, box: Sequence[int], app: Dict[str, int],
                rng: np.random.Generator) -> None:
    """Draw a person-like figure filling ``box`` (its full, unclipped extent).

    Args:
        img (np.ndarray): uint8 BGR image, drawn on in place.
        box (Sequence[int]): x1, y1, x2, y2 (may extend past the image).
        app (dict[str, int]): One appearance (see :func:`sample_appearances`).
        rng (np.random.Generator): Per-instance pose and shading jitter.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    u = float(y2 - y1)
    cx = 0.5 * (x1 + x2)
    sx = (x2 - x1) / (0.4 * u)
    shade = rng.uniform(0.85, 1.12)

    def P(dx, dy):
        return (int(round(
            (cx + dx * u * sx) * _ONE)), int(round((y1 + dy * u) * _ONE)))

    def L(v):  # a length in sub-pixel units
        return max(1, int(round(v * u * _ONE)))

    def T(v):  # a thickness in pixels
        return max(1, int(round(v * u * sx)))

    skin = _c(SKIN_COLORS[app['skin']], shade)
    hair = _c(HAIR_COLORS[app['hair']], shade)
    up = _c(UPPER_COLORS[app['upper']], shade)
    up2 = _c(UPPER_COLORS[app['upper2']], shade)
    low = _c(LOWER_COLORS[app['lower']], shade)
    shoe = _c(SHOE_COLORS[app['shoes']], shade)
    kw = dict(lineType=cv2.LINE_8, shift=_SHIFT)

    spread = rng.uniform(-0.02, 0.08)
    swing_l, swing_r = rng.uniform(-0.03, 0.07, 2)
    if app['backpack'] >= 0:
        cv2.rectangle(img, P(-0.16, 0.17), P(0.16, 0.46),
                      _c(ACCESSORY_COLORS[app['backpack']], 0.8 * shade), -1,
                      **kw)
    if app['long_hair']:
        cv2.rectangle(img, P(-0.066, 0.05), P(0.066, 0.22), hair, -1, **kw)
    # legs
    hip_y, knee_y, foot_y = 0.52, 0.74, 0.95
    tl = T(0.085)
    for s, sp in ((-1, spread), (1, spread * rng.uniform(0.6, 1.2))):
        hip = P(s * 0.06, hip_y)
        foot = P(s * (0.06 + sp), foot_y)
        knee = ((hip[0] + foot[0]) // 2, P(0, knee_y)[1])
        if app['lower_type'] == TROUSERS:
            cv2.line(img, hip, foot, low, tl, **kw)
        elif app['lower_type'] == SHORTS:
            cv2.line(img, knee, foot, skin, max(1, int(tl * 0.7)), **kw)
            cv2.line(img, hip, knee, low, tl, **kw)
        else:
            cv2.line(img, hip, foot, skin, max(1, int(tl * 0.65)), **kw)
        cv2.ellipse(img, P(s * (0.07 + sp), 0.965), (L(0.045 * sx), L(0.022)),
                    0, 0, 360, shoe, -1, **kw)
    if app['lower_type'] == SKIRT:
        pts = np.array(
            [P(-0.12, 0.49),
             P(0.12, 0.49),
             P(0.17, 0.75),
             P(-0.17, 0.75)],
            dtype=np.int32)
        cv2.fillPoly(img, [pts], low, lineType=cv2.LINE_8, shift=_SHIFT)
    # torso + pattern
    tx1, ty1 = P(-0.13, 0.16)
    tx2, ty2 = P(0.13, 0.535)
    cv2.rectangle(img, (tx1, ty1), (tx2, ty2), up, -1, **kw)
    for s in (-1, 1):
        cv2.circle(img, P(s * 0.1, 0.19), L(0.035), up, -1, **kw)
    if app['pattern'] != PLAIN:
        _pattern(img, tx1 >> _SHIFT, ty1 >> _SHIFT, tx2 >> _SHIFT,
                 ty2 >> _SHIFT, int(app['pattern']),
                 max(2, int(round(0.07 * u))), up2)
    # arms
    ta = T(0.055)
    for s, sw in ((-1, swing_l), (1, swing_r)):
        sh = P(s * 0.125, 0.19)
        hand = P(s * (0.15 + sw), 0.5)
        if app['short_sleeves']:
            elbow = ((sh[0] + hand[0]) // 2, (sh[1] + hand[1]) // 2)
            cv2.line(img, elbow, hand, skin, max(1, int(ta * 0.8)), **kw)
            cv2.line(img, sh, elbow, up, ta, **kw)
        else:
            cv2.line(img, sh, hand, up, ta, **kw)
        cv2.circle(img, hand, L(0.022), skin, -1, **kw)
    # accessories
    if app['backpack'] >= 0:
        bc = _c(ACCESSORY_COLORS[app['backpack']], 0.8 * shade)
        for s in (-1, 1):
            cv2.line(img, P(s * 0.08, 0.16), P(s * 0.09, 0.36), bc, T(0.025),
                     **kw)
    if app['bag'] > 0:
        s = -1 if app['bag'] == 1 else 1
        bc = _c(ACCESSORY_COLORS[app['bag_color']], shade)
        cv2.line(img, P(-s * 0.09, 0.17), P(s * 0.17, 0.44), bc, T(0.015),
                 **kw)
        cv2.rectangle(img, P(s * 0.135, 0.43), P(s * 0.2, 0.6), bc, -1, **kw)
    # neck, head, hair, hat
    cv2.rectangle(img, P(-0.025, 0.12), P(0.025, 0.17), skin, -1, **kw)
    cv2.ellipse(img, P(0, 0.085), (L(0.052 * sx), L(0.066)), 0, 0, 360, skin,
                -1, **kw)
    cv2.ellipse(img, P(0, 0.072), (L(0.058 * sx), L(0.054)), 0, 180, 360, hair,
                -1, **kw)
    if app['hat'] >= 0:
        hc = _c(ACCESSORY_COLORS[app['hat']], shade)
        cv2.ellipse(img, P(0, 0.05), (L(0.062 * sx), L(0.045)), 0, 180, 360,
                    hc, -1, **kw)
        cv2.line(img, P(-0.08, 0.05), P(0.08, 0.05), hc, T(0.015), **kw)


def draw_occluder(img: np.ndarray, kind: int, box: Sequence[int],
                  rng: np.random.Generator) -> None:
    """Draw a foreground occluder: 0 = pole, 1 = crate/box.

    Args:
        img (np.ndarray): uint8 BGR image, drawn on in place.
        kind (int): 0 pole, 1 crate.
        box (Sequence[int]): x1, y1, x2, y2.
        rng (np.random.Generator): Colour choice.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    if kind == 0:
        c = tuple(
            float(v) for v in rng.uniform(40, 140) + rng.uniform(-15, 15, 3))
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), c, -1)
        hl = tuple(min(255.0, v + 45) for v in c)
        cv2.line(img, (x1 + (x2 - x1) // 3, y1), (x1 + (x2 - x1) // 3, y2 - 1),
                 hl, 1)
    else:
        c = rng.uniform([30, 70, 110], [90, 140, 190])
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), _c(c), -1)
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), _c(c, 0.6),
                      max(1, (x2 - x1) // 16))
        cv2.line(img, (x1, y1), (x2 - 1, y2 - 1), _c(c, 0.7), 1)


def render_scene(background: np.ndarray, person_boxes: np.ndarray,
                 appearances: List[Dict[str, int]], occluders: np.ndarray,
                 style: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Compose one scene image.

    Args:
        background (np.ndarray): uint8 BGR background (copied).
        person_boxes (np.ndarray): (n, 4) int full extents x1, y1, x2, y2.
        appearances (list[dict]): Appearance of each person.
        occluders (np.ndarray): (m, 5) int rows kind, x1, y1, x2, y2; drawn
            in depth order with the people (by bottom y).
        style (np.ndarray): 3×4 colour cast (:func:`sample_camera_style`).
        rng (np.random.Generator): Per-image jitter and noise.

    Returns:
        np.ndarray: uint8 BGR image.
    """
    img = background.copy()
    # lighting variation of this frame
    img = cv2.convertScaleAbs(img,
                              alpha=rng.uniform(0.9, 1.1),
                              beta=rng.uniform(-8, 8))
    # back to front: by bottom y, a person before an occluder at equal depth
    items = sorted([(int(b[3]), 0, i) for i, b in enumerate(person_boxes)] +
                   [(int(o[4]), 1, k) for k, o in enumerate(occluders)])
    for _, kind, k in items:
        if kind == 0:
            draw_person(img, person_boxes[k], appearances[k], rng)
        else:
            draw_occluder(img, int(occluders[k][0]), occluders[k][1:], rng)
    img = cv2.GaussianBlur(img, (3, 3), 0.55)
    img = cv2.transform(img, style)
    noise = rng.standard_normal(img.shape[:2] + (1, ), dtype=np.float32) * 2.5
    noise = noise + rng.standard_normal(img.shape, dtype=np.float32) * 1.5
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)

"""A top-down view of the synthetic road: vehicles seen from straight above. numpy + cv2 only.

The view a COCO detector was never trained on (a camera on a gantry or a drone over a road; the
same geometry as a conveyor seen from above): bodies are coloured rounded rectangles with dark
windscreens, trucks a cab plus a cargo box, buses a long roof with vents, bicycles a thin frame
under a rider's shoulders and head. The traffic simulation, the camera model and the exact ground
truth are the side view's (scene.py); only the lanes, the sprites and the background differ.

    render_scene(SceneConfig(seconds=30, seed=7, view="topdown"), Path("topdown.mp4"))
"""

from __future__ import annotations

import cv2
import numpy as np

from edgetally.demo.sprites import Sprite, _Canvas, _colour, _shade

# Lane centres as fractions of the frame height; the top two carriageway lanes go right-to-left.
# (centre, direction, kinds, weights, rate)
TOPDOWN_LANES: tuple[tuple[float, int, tuple[str, ...], tuple[float, ...], float], ...] = (
    (0.14, -1, ("bicycle",), (1.0,), 0.08),
    (0.30, -1, ("car", "truck", "bus"), (0.7, 0.2, 0.1), 0.24),
    (0.45, -1, ("car", "truck", "bus"), (0.8, 0.12, 0.08), 0.26),
    (0.62, +1, ("car", "truck", "bus"), (0.8, 0.12, 0.08), 0.26),
    (0.77, +1, ("car", "truck", "bus"), (0.7, 0.2, 0.1), 0.24),
    (0.92, +1, ("bicycle",), (1.0,), 0.08),
)
TOPDOWN_SCALE = 0.85  # every lane is at the same distance from an overhead camera


def _rounded(cv: _Canvas, x0: float, y0: float, x1: float, y1: float, r: float, c: tuple[int, int, int]) -> None:
    """A filled rectangle with rounded corners (a body seen from above)."""
    cv.rect(x0 + r, y0, x1 - r, y1, c)
    cv.rect(x0, y0 + r, x1, y1 - r, c)
    for cx in (x0 + r, x1 - r):
        for cy in (y0 + r, y1 - r):
            cv.circle(cx, cy, r, c)


def _car(rng: np.random.Generator, scale: float) -> _Canvas:
    length = rng.uniform(62, 82) * scale
    width = length * rng.uniform(0.42, 0.5)
    body = _colour(rng)
    cv = _Canvas(int(length) + 4, int(width) + 4)
    _rounded(cv, 1, 1, length, width, width * 0.22, body)
    glass = (70, 55, 45) if rng.random() < 0.5 else (110, 90, 75)
    m = width * 0.14
    cv.poly(
        [
            (length * 0.62, 1 + m),
            (length * 0.76, 1 + m * 0.6),
            (length * 0.76, width - m * 0.6),
            (length * 0.62, width - m),
        ],
        glass,
    )
    cv.poly(
        [
            (length * 0.14, 1 + m * 0.8),
            (length * 0.24, 1 + m),
            (length * 0.24, width - m),
            (length * 0.14, width - m * 0.8),
        ],
        glass,
    )
    cv.rect(length * 0.26, 1 + m * 1.2, length * 0.6, width - m * 1.2, _shade(body, 0.85))  # roof
    for y in (0.5, width + 0.5):  # mirrors
        cv.circle(length * 0.6, y, max(1.5, width * 0.06), _shade(body, 0.7))
    cv.texture(rng, 0.05)
    return cv


def _truck(rng: np.random.Generator, scale: float) -> _Canvas:
    length = rng.uniform(120, 170) * scale
    width = rng.uniform(36, 42) * scale
    cab, box = _colour(rng), _colour(rng)
    cv = _Canvas(int(length) + 4, int(width) + 4)
    cab_x = length * 0.78
    cv.rect(1, 1, cab_x - 3, width, box)
    for k in range(1, int(rng.integers(3, 8))):  # roof ribs of the cargo box
        x = cab_x * k / 8
        cv.line((x, 3), (x, width - 2), _shade(box, 0.8), max(1, int(scale)))
    _rounded(cv, cab_x, 2, length, width - 1, width * 0.15, cab)
    cv.rect(length * 0.9, 4, length * 0.97, width - 3, (70, 55, 45))  # windscreen
    cv.texture(rng, 0.04)
    return cv


def _bus(rng: np.random.Generator, scale: float) -> _Canvas:
    length = rng.uniform(145, 185) * scale
    width = rng.uniform(38, 44) * scale
    body = _colour(rng)
    cv = _Canvas(int(length) + 4, int(width) + 4)
    _rounded(cv, 1, 1, length, width, width * 0.12, body)
    roof = _shade(body, 0.9)
    cv.rect(length * 0.05, width * 0.18, length * 0.93, width * 0.82, roof)
    for k in range(int(rng.integers(2, 5))):  # air-conditioning units and hatches
        x0 = length * (0.15 + 0.2 * k)
        cv.rect(x0, width * 0.3, x0 + length * 0.08, width * 0.7, (170, 170, 175))
    cv.rect(length * 0.95, 3, length - 1, width - 2, (70, 55, 45))
    cv.texture(rng, 0.04)
    return cv


def _bicycle(rng: np.random.Generator, scale: float) -> _Canvas:
    length = rng.uniform(32, 40) * scale
    width = length * 0.45
    cv = _Canvas(int(length) + 4, int(width) + 4)
    mid = width / 2 + 1
    t = max(1, round(scale * 1.5))
    cv.line((1, mid), (length, mid), (30, 30, 30), t + 1)  # wheels and frame, seen edge-on
    cv.line((length * 0.72, mid - width * 0.35), (length * 0.72, mid + width * 0.35), (60, 60, 60), t)  # handlebar
    shirt = _colour(rng)
    cv.circle(length * 0.5, mid, width * 0.42, shirt)  # shoulders
    cv.circle(length * 0.56, mid, width * 0.22, (40, 60, 90))  # head (hair / helmet)
    return cv


_DRAW = {"car": _car, "truck": _truck, "bus": _bus, "bicycle": _bicycle}


def make_topdown_sprite(kind: str, scale: float, rng: np.random.Generator) -> Sprite:
    """A new random vehicle of class ``kind`` seen from above, facing right."""
    if kind not in _DRAW:
        raise ValueError(f"vehicle kind: expected one of {sorted(_DRAW)}, got {kind!r}")
    return _DRAW[kind](rng, scale).sprite()


def draw_topdown_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8: verges, two cycle lanes, a four-lane road with markings, seen from above."""
    from edgetally.demo.render import _dashes, _textured

    h, w = height, width
    img = _textured(h, w, (60, 105, 75), 0.14, rng)  # grass
    bands = [(0.06, 0.22, (85, 95, 150)), (0.22, 0.84, (78, 80, 84)), (0.84, 1.0, (85, 95, 150))]
    for top, bottom, colour in bands:
        y0, y1 = int(top * h), int(bottom * h)
        img[y0:y1] = _textured(y1 - y0, w, colour, 0.06, rng)
    for y in (0.22, 0.84):
        cv2.line(img, (0, int(y * h)), (w, int(y * h)), (220, 220, 220), 2, cv2.LINE_AA)
    for y in (0.375, 0.695):
        _dashes(img, int(y * h), (210, 210, 210), 2, 30, 24)
    for dy in (-2, 2):
        cv2.line(img, (0, int(0.535 * h) + dy), (w, int(0.535 * h) + dy), (40, 200, 230), 2, cv2.LINE_AA)
    for _ in range(6):  # oil stains and patches: road texture a detector must not fire on
        cx, cy = int(rng.integers(0, w)), int(rng.uniform(0.25, 0.8) * h)
        axes = (int(rng.integers(6, 22)), int(rng.integers(4, 10)))
        cv2.ellipse(img, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, (58, 60, 62), -1, cv2.LINE_AA)
    return img

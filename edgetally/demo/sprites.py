"""Vehicle sprites for the synthetic traffic scene: numpy + cv2 drawing, no assets.

Each sprite is drawn once (a vehicle keeps its lane, so its perspective scale never changes) as a
side-oblique view facing right, cropped to its mask's tight box. The ground-truth box of a vehicle
is therefore exactly the sprite's extent at its integer paste position: nothing is estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# COCO-compatible names; class id = position in this tuple.
CLASSES: tuple[str, ...] = ("car", "truck", "bus", "bicycle")

_BODY_COLOURS = np.array(
    [
        [235, 235, 235],
        [40, 40, 40],
        [150, 150, 155],
        [30, 30, 170],
        [160, 60, 20],
        [40, 120, 30],
        [20, 180, 230],
        [200, 200, 80],
        [90, 40, 110],
        [60, 70, 90],
        [110, 140, 160],
        [20, 90, 200],
    ],
    dtype=np.int32,
)  # BGR


@dataclass(frozen=True)
class Sprite:
    """image (h, w, 3) uint8 BGR and mask (h, w) bool, tight around the drawn vehicle."""

    image: np.ndarray
    mask: np.ndarray

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])

    def mirrored(self) -> Sprite:
        return Sprite(np.ascontiguousarray(self.image[:, ::-1]), np.ascontiguousarray(self.mask[:, ::-1]))


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    base = _BODY_COLOURS[rng.integers(len(_BODY_COLOURS))] + rng.integers(-25, 26, size=3)
    return tuple(int(c) for c in np.clip(base, 0, 255))  # type: ignore[return-value]


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * f, 0, 255)) for v in c)  # type: ignore[return-value]


class _Canvas:
    """A drawing surface plus the mask of everything drawn on it (drawn twice: colour + mask)."""

    def __init__(self, w: int, h: int) -> None:
        self.img = np.zeros((h, w, 3), np.uint8)
        self.mask = np.zeros((h, w), np.uint8)

    def rect(self, x0: float, y0: float, x1: float, y1: float, c: tuple[int, int, int]) -> None:
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1)))
        cv2.rectangle(self.img, p0, p1, c, -1)
        cv2.rectangle(self.mask, p0, p1, 255, -1)

    def poly(self, pts: list[tuple[float, float]], c: tuple[int, int, int]) -> None:
        arr = np.round(np.array(pts)).astype(np.int32)
        cv2.fillPoly(self.img, [arr], c, cv2.LINE_AA)
        cv2.fillPoly(self.mask, [arr], 255)

    def circle(self, x: float, y: float, r: float, c: tuple[int, int, int], thick: int = -1) -> None:
        centre, rad = (int(round(x)), int(round(y))), max(1, int(round(r)))
        cv2.circle(self.img, centre, rad, c, thick, cv2.LINE_AA)
        cv2.circle(self.mask, centre, rad, 255, thick)

    def line(self, a: tuple[float, float], b: tuple[float, float], c: tuple[int, int, int], t: int) -> None:
        pa, pb = (int(round(a[0])), int(round(a[1]))), (int(round(b[0])), int(round(b[1])))
        cv2.line(self.img, pa, pb, c, t, cv2.LINE_AA)
        cv2.line(self.mask, pa, pb, 255, t)

    def texture(self, rng: np.random.Generator, amount: float) -> None:
        """Per-vehicle grain and a vertical light gradient so no two bodies look flat-identical."""
        h, w = self.mask.shape
        grad = np.linspace(1.12, 0.82, h, dtype=np.float32)[:, None, None]
        grain = rng.normal(1.0, amount, size=(h, w, 1)).astype(np.float32)
        self.img = np.clip(self.img.astype(np.float32) * grad * grain, 0, 255).astype(np.uint8)

    def sprite(self) -> Sprite:
        ys, xs = np.nonzero(self.mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        mask = self.mask[y0:y1, x0:x1] > 0
        img = self.img[y0:y1, x0:x1].copy()
        img[~mask] = 0
        return Sprite(img, mask)


def _wheels(cv: _Canvas, xs: list[float], ground: float, r: float) -> None:
    for x in xs:
        cv.circle(x, ground - r, r, (25, 25, 25))
        cv.circle(x, ground - r, r * 0.45, (120, 120, 120))


def _car(rng: np.random.Generator, scale: float) -> _Canvas:
    length = rng.uniform(62, 82) * scale
    h = length * rng.uniform(0.38, 0.46)
    body = _colour(rng)
    cv = _Canvas(int(length) + 4, int(h) + 4)
    r = h * 0.17
    cv.rect(1, h * 0.42, length, h - r * 0.8, body)
    roof = [(length * 0.22, h * 0.45), (length * 0.33, h * 0.06), (length * 0.68, h * 0.06), (length * 0.82, h * 0.45)]
    cv.poly(roof, _shade(body, 0.9))
    glass = (90, 70, 50) if rng.random() < 0.5 else (120, 100, 80)
    cv.poly(
        [(length * 0.28, h * 0.43), (length * 0.36, h * 0.12), (length * 0.49, h * 0.12), (length * 0.49, h * 0.43)],
        glass,
    )
    cv.poly(
        [(length * 0.53, h * 0.43), (length * 0.53, h * 0.12), (length * 0.65, h * 0.12), (length * 0.77, h * 0.43)],
        glass,
    )
    cv.rect(length * 0.96, h * 0.5, length, h * 0.6, (80, 200, 250))  # headlight
    cv.rect(1, h * 0.5, length * 0.04, h * 0.6, (40, 40, 200))  # tail light
    _wheels(cv, [length * 0.2, length * 0.8], h, r)
    cv.texture(rng, 0.05)
    return cv


def _truck(rng: np.random.Generator, scale: float) -> _Canvas:
    length = rng.uniform(120, 170) * scale
    h = length * rng.uniform(0.34, 0.42)
    cab, box = _colour(rng), _colour(rng)
    cv = _Canvas(int(length) + 4, int(h) + 4)
    r = h * 0.12
    cab_x = length * 0.76
    cv.rect(1, 1, cab_x - 3, h - r * 1.3, box)
    for k in range(1, int(rng.integers(3, 9))):  # ribs on the cargo box: texture the detector must ignore
        x = cab_x * k / 9
        cv.line((x, 3), (x, h - r * 1.5), _shade(box, 0.75), max(1, int(scale)))
    if rng.random() < 0.6:
        cv.rect(cab_x * 0.2, h * 0.25, cab_x * 0.6, h * 0.55, _colour(rng))  # a logo panel
    cv.poly([(cab_x, h * 0.2), (length * 0.93, h * 0.2), (length, h * 0.5), (length, h - r), (cab_x, h - r)], cab)
    cv.poly(
        [(cab_x + 3, h * 0.26), (length * 0.91, h * 0.26), (length * 0.97, h * 0.48), (cab_x + 3, h * 0.48)],
        (90, 70, 50),
    )
    cv.rect(1, h - r * 1.4, length, h - r * 0.9, (35, 35, 35))
    _wheels(cv, [length * 0.12, length * 0.3, length * 0.86], h, r)
    cv.texture(rng, 0.04)
    return cv


def _bus(rng: np.random.Generator, scale: float) -> _Canvas:
    length = rng.uniform(145, 185) * scale
    h = length * rng.uniform(0.3, 0.34)
    body = _colour(rng)
    cv = _Canvas(int(length) + 4, int(h) + 4)
    r = h * 0.13
    cv.rect(1, h * 0.04, length, h - r * 0.8, body)
    n = int(rng.integers(6, 10))
    for k in range(n):  # a row of windows is what makes a bus a bus
        x0 = length * (0.05 + 0.86 * k / n)
        cv.rect(x0, h * 0.14, x0 + length * 0.86 / n - 3, h * 0.48, (95, 75, 55))
    cv.rect(length * 0.92, h * 0.14, length - 1, h * 0.62, (95, 75, 55))
    cv.rect(1, h * 0.62, length, h * 0.68, _colour(rng))  # a stripe
    _wheels(cv, [length * 0.16, length * 0.8], h, r)
    cv.texture(rng, 0.04)
    return cv


def _bicycle(rng: np.random.Generator, scale: float) -> _Canvas:
    length = rng.uniform(30, 38) * scale
    h = length * rng.uniform(1.2, 1.4)
    cv = _Canvas(int(length) + 6, int(h) + 6)
    r = length * 0.24
    g = h - 1
    frame_c, shirt = _colour(rng), _colour(rng)
    t = max(1, int(round(scale * 1.5)))
    for x in (r + 1, length - r):
        cv.circle(x, g - r, r, (30, 30, 30), t)
    seat, bar = (length * 0.42, g - r * 2.1), (length * 0.7, g - r * 2.3)
    cv.line((r + 1, g - r), seat, frame_c, t)
    cv.line(seat, (length * 0.5, g - r), frame_c, t)
    cv.line((length * 0.5, g - r), (length - r, g - r), frame_c, t)
    cv.line((length - r, g - r), bar, frame_c, t)
    hip, shoulder = (length * 0.42, g - r * 2.3), (length * 0.56, h * 0.22)
    cv.line(hip, (length * 0.52, g - r * 0.9), (60, 50, 40), t + 1)  # leg
    cv.line(hip, shoulder, shirt, int(t * 3))  # torso
    cv.line(shoulder, bar, shirt, t)  # arm
    cv.circle(shoulder[0] + length * 0.03, h * 0.11, length * 0.1, (120, 150, 200))  # head
    return cv


_DRAW = {"car": _car, "truck": _truck, "bus": _bus, "bicycle": _bicycle}


def make_sprite(kind: str, scale: float, rng: np.random.Generator) -> Sprite:
    """A new random vehicle of class ``kind`` at perspective ``scale`` (1.0 = nearest lane), facing right."""
    if kind not in _DRAW:
        raise ValueError(f"vehicle kind: expected one of {sorted(_DRAW)}, got {kind!r}")
    return _DRAW[kind](rng, scale).sprite()

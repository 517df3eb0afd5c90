"""Plane geometry for counters, vectorised over points. numpy only, image coordinates (y down)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Anchor = Literal["bottom_center", "center", "top_center"]
ANCHORS: tuple[str, ...] = ("bottom_center", "center", "top_center")


def anchor_points(xyxy: np.ndarray, anchor: str) -> F64:
    """(N, 4) boxes -> (N, 2) anchor points. bottom_center (default for counting) is where a
    vehicle or a person touches the ground, so a line drawn on the road means what it shows."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    cx = (b[:, 0] + b[:, 2]) / 2
    if anchor == "bottom_center":
        y = b[:, 3]
    elif anchor == "center":
        y = (b[:, 1] + b[:, 3]) / 2
    elif anchor == "top_center":
        y = b[:, 1]
    else:
        raise ValueError(f"anchor: expected one of {ANCHORS}, got {anchor!r}")
    return np.stack([cx, y], axis=1)


def signed_distance(points: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> F64:
    """Signed distance (px) of (N, 2) points to the infinite line through p1 -> p2.

    Sign of the cross product (p2 - p1) x (P - p1); with y down, positive is the left of the
    direction p1 -> p2 as seen on screen.
    """
    d = p2 - p1
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    cross = d[0] * (pts[:, 1] - p1[1]) - d[1] * (pts[:, 0] - p1[0])
    return cross / float(np.hypot(d[0], d[1]))


def crossing_param(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> F64:
    """Where the moves a -> b (N, 2) meet the line p1 -> p2, as a fraction along p1 -> p2.

    sa, sb: signed distances of a and b (opposite signs, or sa == 0). A value in [0, 1] means the
    move crossed the counting *segment*, not only its infinite extension.
    """
    denom = sa - sb
    alpha = np.clip(np.divide(sa, denom, out=np.zeros_like(sa), where=denom != 0), 0.0, 1.0)
    hit = a + alpha[:, None] * (b - a)
    d = p2 - p1
    return ((hit - p1) @ d) / float(d @ d)


def segment_edge_crossings(a: np.ndarray, b: np.ndarray, polygon: np.ndarray) -> npt.NDArray[np.int64]:
    """How many polygon edges each move a -> b (N, 2) properly crosses -> (N,)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    v = np.asarray(polygon, dtype=np.float64)
    w = np.roll(v, -1, axis=0)

    def orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])

    A, B = a[:, None, :], b[:, None, :]
    V, W = v[None], w[None]
    o1 = orient(A, B, V)
    o2 = orient(A, B, W)
    o3 = orient(V, W, A)
    o4 = orient(V, W, B)
    return ((o1 * o2 < 0) & (o3 * o4 < 0)).sum(axis=1).astype(np.int64)


class PolygonGeometry:
    """A polygon with its edges precomputed: the zone counter's per-frame tests in few numpy ops."""

    def __init__(self, polygon: np.ndarray) -> None:
        self.v = np.asarray(polygon, dtype=np.float64)
        self.w = np.roll(self.v, -1, axis=0)
        self.e = self.w - self.v
        self.ee = np.maximum((self.e * self.e).sum(axis=1), 1e-12)
        dy = self.e[:, 1]
        self.slope = self.e[:, 0] / np.where(dy == 0, 1.0, dy)  # dx/dy, for the even-odd ray test
        self.lo = self.v.min(axis=0)
        self.hi = self.v.max(axis=0)

    def inside_and_distance(self, points: np.ndarray) -> tuple[npt.NDArray[np.bool_], F64]:
        """(N, 2) -> inside (even-odd rule) (N,) and distance to the boundary (N,) in px."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        py = pts[:, 1:2]
        straddle = (self.v[:, 1] > py) != (self.w[:, 1] > py)
        x_cross = self.v[:, 0] + (py - self.v[:, 1]) * self.slope
        inside = (straddle & (pts[:, 0:1] < x_cross)).sum(axis=1) % 2 == 1
        rel = pts[:, None, :] - self.v[None]
        t = np.clip((rel * self.e).sum(axis=2) / self.ee, 0.0, 1.0)
        gap = rel - t[..., None] * self.e
        return inside, np.sqrt((gap * gap).sum(axis=2).min(axis=1))

    def may_cross(self, a: np.ndarray, b: np.ndarray) -> npt.NDArray[np.bool_]:
        """Cheap pre-test: the bounding box of each move a -> b overlaps the polygon's."""
        return np.all((np.maximum(a, b) >= self.lo) & (np.minimum(a, b) <= self.hi), axis=1)

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


def crossing_param(
    a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray, p1: np.ndarray, p2: np.ndarray
) -> F64:
    """Where the moves a -> b (N, 2) meet the line p1 -> p2, as a fraction along p1 -> p2.

    sa, sb: signed distances of a and b (opposite signs, or sa == 0). A value in [0, 1] means the
    move crossed the counting *segment*, not only its infinite extension.
    """
    denom = sa - sb
    alpha = np.clip(np.divide(sa, denom, out=np.zeros_like(sa), where=denom != 0), 0.0, 1.0)
    hit = a + alpha[:, None] * (b - a)
    d = p2 - p1
    return ((hit - p1) @ d) / float(d @ d)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> npt.NDArray[np.bool_]:
    """Even-odd rule, (N, 2) points x (K, 2) polygon -> (N,) bool."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    v = np.asarray(polygon, dtype=np.float64)
    w = np.roll(v, -1, axis=0)
    px, py = pts[:, 0:1], pts[:, 1:2]
    straddle = (v[None, :, 1] > py) != (w[None, :, 1] > py)
    dy = w[:, 1] - v[:, 1]
    safe_dy = np.where(dy == 0, 1.0, dy)
    x_cross = v[:, 0] + (py - v[:, 1]) * (w[:, 0] - v[:, 0]) / safe_dy
    return (straddle & (px < x_cross)).sum(axis=1) % 2 == 1


def distance_to_polyline(points: np.ndarray, polygon: np.ndarray) -> F64:
    """Distance (px) of (N, 2) points to the closed boundary of a (K, 2) polygon -> (N,)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    v = np.asarray(polygon, dtype=np.float64)
    e = np.roll(v, -1, axis=0) - v
    ee = np.maximum((e * e).sum(axis=1), 1e-12)
    rel = pts[:, None, :] - v[None, :, :]
    t = np.clip((rel * e[None]).sum(axis=2) / ee, 0.0, 1.0)
    nearest = v[None] + t[..., None] * e[None]
    return np.sqrt(((pts[:, None, :] - nearest) ** 2).sum(axis=2)).min(axis=1)


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

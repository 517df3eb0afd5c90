"""IoU matrices and thresholded optimal assignment. numpy only; scipy is used when present.

The board installs numpy only, so a pure Hungarian solver is included. It is only asked to
solve the *ambiguous* part of a frame's matching: pairs where a track and a detection only see
each other are matched directly (the common case in traffic), so the solver sees small problems.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

_INVALID = 1e6  # cost of a pair below the IoU threshold: never chosen over a valid pair


def iou_matrix(a: np.ndarray, b: np.ndarray, height_modulated: bool = False) -> npt.NDArray[np.float64]:
    """IoU of every box in ``a (N, 4)`` with every box in ``b (M, 4)``, xyxy -> (N, M).

    height_modulated: multiply by the overlap of the two boxes' vertical extents over their
    union (Hybrid-SORT's height-modulated IoU). Two people one behind the other overlap a lot in
    the image but stand at different depths: their boxes differ in height and foot line, which
    this factor sees and plain IoU barely does.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    # np.maximum, not np.clip: same result, a fraction of the per-call overhead (runs every frame)
    inter = np.maximum(ix2 - ix1, 0.0) * np.maximum(iy2 - iy1, 0.0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    if height_modulated:
        span = np.maximum(a[:, None, 3], b[None, :, 3]) - np.minimum(a[:, None, 1], b[None, :, 1])
        iou *= np.maximum(iy2 - iy1, 0.0) / np.maximum(span, 1e-12)
    return iou


def hungarian(cost: np.ndarray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Minimum-cost assignment of a rectangular (N, M) cost matrix, pure numpy.

    Returns (rows, cols) like ``scipy.optimize.linear_sum_assignment``: min(N, M) pairs,
    sorted by row. Shortest augmenting path (Jonker-Volgenant style potentials), O(n^2 m).
    """
    c = np.asarray(cost, dtype=np.float64)
    transposed = c.shape[0] > c.shape[1]
    if transposed:
        c = c.T
    n, m = c.shape
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j] = row (1-based) assigned to column j; 0 = free
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        _augment(c, i, u, v, p, way)
    cols = np.nonzero(p[1:])[0]
    rows = p[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows, kind="stable")
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def _augment(c: np.ndarray, i: int, u: np.ndarray, v: np.ndarray, p: np.ndarray, way: np.ndarray) -> None:
    """Insert row ``i`` (1-based) into the assignment along a shortest augmenting path."""
    m = c.shape[1]
    p[0] = i
    j0 = 0
    minv = np.full(m + 1, np.inf)
    used = np.zeros(m + 1, dtype=bool)
    while True:
        used[j0] = True
        i0 = p[j0]
        free = ~used[1:]
        cur = c[i0 - 1] - u[i0] - v[1:]
        better = free & (cur < minv[1:])
        minv[1:][better] = cur[better]
        way[1:][better] = j0
        masked = np.where(free, minv[1:], np.inf)
        j1 = int(np.argmin(masked)) + 1
        delta = masked[j1 - 1]
        u[p[used]] += delta
        v[used] -= delta
        minv[~used] -= delta
        j0 = j1
        if p[j0] == 0:
            break
    while j0 != 0:
        j1 = way[j0]
        p[j0] = p[j1]
        j0 = j1


@functools.lru_cache(maxsize=1)
def _solver():  # type: ignore[no-untyped-def]
    """scipy's C solver when importable (faster on big ambiguous blocks), else ours. Resolved
    once: a failing import is slow, and this runs every frame."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return hungarian
    return linear_sum_assignment


def warm_up() -> None:
    """Resolve the solver now (its import is slow); later calls are free."""
    _solver()


def match(
    similarity: np.ndarray, threshold: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Maximum-similarity one-to-one matching keeping only pairs with similarity >= threshold.

    similarity: (N, M), e.g. IoU of N tracks with M detections.
    Returns (matched_rows, matched_cols, unmatched_rows, unmatched_cols). The solution first
    maximises the number of valid pairs, then their total similarity.
    """
    s = np.asarray(similarity, dtype=np.float64)
    n, m = s.shape
    valid = s >= threshold
    row_deg = valid.sum(axis=1)
    col_deg = valid.sum(axis=0)
    # A pair whose row and column have no other valid partner is an isolated component: match it.
    lone = valid & (row_deg[:, None] == 1) & (col_deg[None, :] == 1)
    rows_l, cols_l = np.nonzero(lone)
    rows_h = np.zeros(0, np.int64)
    cols_h = np.zeros(0, np.int64)
    busy_r = np.flatnonzero((row_deg >= 1) & ~lone.any(axis=1))
    if busy_r.size:
        busy_c = np.flatnonzero((col_deg >= 1) & ~lone.any(axis=0))
        sub_valid = valid[np.ix_(busy_r, busy_c)]
        sub_cost = np.where(sub_valid, 1.0 - s[np.ix_(busy_r, busy_c)], _INVALID)
        r, c = _solver()(sub_cost)
        keep = sub_valid[r, c]
        rows_h, cols_h = busy_r[r[keep]], busy_c[c[keep]]
    rows = np.concatenate([rows_l, rows_h]).astype(np.int64)
    cols = np.concatenate([cols_l, cols_h]).astype(np.int64)
    free_r = np.ones(n, bool)
    free_r[rows] = False
    free_c = np.ones(m, bool)
    free_c[cols] = False
    return rows, cols, np.flatnonzero(free_r), np.flatnonzero(free_c)

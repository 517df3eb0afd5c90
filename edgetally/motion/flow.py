"""Sparse optical flow that carries track boxes from one camera frame to the next.

Between two detector runs every track box is moved by what the image says it did: a small grid
of points inside each box is followed by pyramidal Lucas-Kanade on a downscaled grey frame (ONE
``cv2.calcOpticalFlowPyrLK`` call for every box's points, and one backwards for the
forward-backward check), and each box takes the median shift of its points and the median
ratio of their pairwise distances as its scale change (Kalal et al.'s Median Flow). A point
whose backward track does not return to where it started, or whose shift disagrees with its
box's median, is dropped; a box that keeps fewer than ``min_points`` of its points is reported
as not ok, and its tracker keeps its Kalman prediction for that frame.

Each camera frame is converted once (grey, downscaled, pyramid) and kept as the previous frame
of the next call, so the per-frame cost is one conversion plus the two LK calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FlowConfig:
    """Lucas-Kanade settings. Pixel sizes are in the downscaled frame.

    max_width: frames wider than this are downscaled to it (640x360 -> 320x180): LK needs texture,
        not resolution, and the cost scales with the pyramid.
    grid: grid x grid points per box, placed on the box's inner part (inset of each side), where
        the object is; the box's edges are mostly background.
    win: LK window side; levels: pyramid levels above the base (each halves the image, so the
        largest motion followed is about win / 2 x 2**levels px).
    fb_max_px: a point whose forward-then-backward track ends farther than this from its start
        failed (occluded, textureless or left the frame).
    dev_max: a point whose shift differs from its box's median shift by more than this fraction
        of the box's size (plus fb_max_px) is an outlier (background inside the box).
    min_points: share of a box's points that must survive for the box to move.
    max_scale_step: a box's size changes by at most this factor per frame (clipped).
    """

    max_width: int = 320
    grid: int = 3
    inset: float = 0.2
    win: int = 9
    levels: int = 2
    fb_max_px: float = 1.0
    dev_max: float = 0.1
    min_points: float = 0.5
    max_scale_step: float = 1.1

    def __post_init__(self) -> None:
        if self.max_width < 16 or self.grid < 2 or self.win < 3 or self.levels < 0:
            raise ValueError("FlowConfig: need max_width >= 16, grid >= 2, win >= 3, levels >= 0")
        if not (0.0 <= self.inset < 0.5 and 0.0 < self.min_points <= 1.0 and self.max_scale_step >= 1.0):
            raise ValueError("FlowConfig: need 0 <= inset < 0.5, 0 < min_points <= 1, max_scale_step >= 1")


class FlowPropagator:
    """Moves boxes from the previous frame to the current one. One instance per camera.

    ``observe(image)`` on frames the detector saw (only remembers the frame);
    ``step(image, xyxy)`` on the others: boxes of the previous frame -> boxes in this one.
    """

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.config = config or FlowConfig()
        self._prev: np.ndarray | None = None  # grey, downscaled previous frame
        self._prev_size: tuple[int, int] | None = None  # its size before downscaling
        self._scale = 1.0  # working pixels per frame pixel
        self._term = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03)
        cfg = self.config
        u = (np.arange(cfg.grid, dtype=np.float32) + 0.5) / cfg.grid  # cell centres in [0, 1]
        u = cfg.inset + (1.0 - 2.0 * cfg.inset) * u
        gx, gy = np.meshgrid(u, u)
        self._unit = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (P, 2) positions in a unit box
        self._pairs = np.triu_indices(cfg.grid * cfg.grid, k=1)  # point pairs for the scale change

    def reset(self) -> None:
        """Forget the previous frame (a source restart, a jump in time)."""
        self._prev = self._prev_size = None

    def observe(self, image: np.ndarray) -> None:
        """Remember ``image`` (H, W, 3 BGR or H, W grey) as the previous frame of the next step."""
        self._prev, self._prev_size = self._grey(image), image.shape[:2]

    def step(self, image: np.ndarray, xyxy: np.ndarray) -> tuple[F32, BoolArray]:
        """Move ``xyxy`` (N, 4) boxes of the previous frame into ``image``.

        Returns (moved boxes (N, 4) float32, ok (N,) bool); rows that are not ok are returned
        unchanged. Without a previous frame (first call, after reset, or a new frame size)
        every row is not ok. ``image`` becomes the previous frame of the next call.
        """
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        prev, prev_size = self._prev, self._prev_size
        cur = self._grey(image)
        self._prev, self._prev_size = cur, image.shape[:2]
        ok = np.zeros(boxes.shape[0], bool)
        if prev is None or boxes.shape[0] == 0 or prev_size != image.shape[:2]:
            return boxes.copy(), ok
        start = self._points(boxes * self._scale, cur.shape)  # (N, P, 2) working pixels
        end, valid = self._track(prev, cur, start.reshape(-1, 2))
        end = end.reshape(start.shape)
        valid = valid.reshape(start.shape[:2])
        shift, scale, ok = self._box_motion(start, end, valid, boxes * self._scale)
        moved = _apply(boxes, shift / self._scale, scale)
        return np.where(ok[:, None], moved, boxes).astype(np.float32), ok

    # -- internals ------------------------------------------------------------------------

    def _grey(self, image: np.ndarray) -> np.ndarray:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape
        if w > self.config.max_width:
            self._scale = self.config.max_width / w
            size = (self.config.max_width, max(1, round(h * self._scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        else:
            self._scale = 1.0
        return grey

    def _points(self, boxes: np.ndarray, shape: tuple[int, ...]) -> F32:
        """(N, 4) boxes -> (N, P, 2) grid points inside each box, clipped to the frame."""
        wh = boxes[:, 2:4] - boxes[:, 0:2]
        pts = boxes[:, None, 0:2] + self._unit[None] * wh[:, None, :]
        pts[..., 0] = np.clip(pts[..., 0], 0.0, shape[1] - 1.0)
        pts[..., 1] = np.clip(pts[..., 1], 0.0, shape[0] - 1.0)
        return pts.astype(np.float32)

    def _track(self, prev: np.ndarray, cur: np.ndarray, pts: F32) -> tuple[F32, BoolArray]:
        """Forward LK prev -> cur, backward cur -> prev; valid = both found and the round trip
        ends within fb_max_px of the start."""
        cfg = self.config
        win = (cfg.win, cfg.win)
        p0 = pts.reshape(-1, 1, 2)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(
            prev, cur, p0, None, winSize=win, maxLevel=cfg.levels, criteria=self._term
        )
        back, st2, _ = cv2.calcOpticalFlowPyrLK(
            cur, prev, p1, None, winSize=win, maxLevel=cfg.levels, criteria=self._term
        )
        fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        valid = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= cfg.fb_max_px)
        return p1.reshape(-1, 2).astype(np.float32, copy=False), valid

    def _box_motion(
        self, start: F32, end: F32, valid: BoolArray, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, BoolArray]:
        """Per box: median shift (N, 2), median pairwise-distance ratio (N,), ok (N,)."""
        cfg = self.config
        d = end - start  # (N, P, 2)
        med = _masked_median(d, valid)
        size = np.maximum(boxes[:, 2:4] - boxes[:, 0:2], 1.0).max(axis=1)
        off = d - med[:, None, :]
        valid = valid & (np.hypot(off[..., 0], off[..., 1]) <= cfg.dev_max * size[:, None] + cfg.fb_max_px)
        ok = valid.sum(axis=1) >= max(2, int(np.ceil(cfg.min_points * start.shape[1])))
        shift = _masked_median(d, valid)
        iu, ju = self._pairs
        a, b = start[:, iu] - start[:, ju], end[:, iu] - end[:, ju]  # (N, pairs, 2)
        d0, d1 = np.hypot(a[..., 0], a[..., 1]), np.hypot(b[..., 0], b[..., 1])
        pair_ok = valid[:, iu] & valid[:, ju] & (d0 > 1e-3)
        ratio = _masked_median((d1 / np.maximum(d0, 1e-3))[..., None], pair_ok)[:, 0]
        scale = np.clip(np.nan_to_num(ratio, nan=1.0), 1.0 / cfg.max_scale_step, cfg.max_scale_step)
        return np.nan_to_num(shift), scale, ok


def _masked_median(values: np.ndarray, valid: BoolArray) -> np.ndarray:
    """Median over axis 1 of each row's valid entries: values (N, P, K), valid (N, P) -> (N, K);
    NaN for a row with none. Vectorised: invalid entries sort last as +inf, then the middle one
    or two valid entries are read."""
    n = valid.sum(axis=1)
    s = np.sort(np.where(valid[..., None], values, np.inf), axis=1)
    rows = np.arange(values.shape[0])
    mid = (s[rows, np.maximum(n - 1, 0) // 2] + s[rows, np.maximum(n, 1) // 2]) / 2.0
    return np.where((n > 0)[:, None], mid, np.nan)


def _apply(boxes: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> F32:
    """Boxes moved by ``shift`` (N, 2) px and resized by ``scale`` (N,) about their centre."""
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2.0 + shift
    half = (boxes[:, 2:4] - boxes[:, 0:2]) / 2.0 * scale[:, None]
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)

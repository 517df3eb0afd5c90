"""Constant-velocity Kalman filter for boxes, vectorised over tracks. numpy only.

State per track (8,): ``cx, cy, w, h, vcx, vcy, vw, vh`` in pixels and pixels per SECOND.
Measurement (4,): ``cx, cy, w, h``.

The process noise is ByteTrack's / BoT-SORT's (standard deviations proportional to the box size,
weights 1/20 for positions and 1/160 for velocities), which those trackers express per frame at
about 30 fps; the measurement noise is 4x theirs (``KalmanNoise.meas_weight``). Here the process
noise is scaled by the elapsed time instead, so a camera that drops to 5 fps gets a wider (not a
wrongly tight) prediction: variance grows linearly with ``dt * ref_fps`` (a random walk),
velocities are per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

_MIN_SIZE = 1.0  # px; a predicted box never shrinks below this (keeps IoU and noise finite)


def xyxy_to_cxcywh(xyxy: np.ndarray) -> F64:
    """(N, 4) corners -> (N, 4) centre x, centre y, width, height."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    wh = b[:, 2:4] - b[:, 0:2]  # slices + one concatenate: np.stack of columns is slower per call
    return np.concatenate([b[:, 0:2] + wh / 2, wh], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> F64:
    """(N, 4+) centre/size (extra columns ignored) -> (N, 4) corners."""
    b = np.asarray(boxes, dtype=np.float64)
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, 0:2] - half, b[:, 0:2] + half], axis=1)


@dataclass(frozen=True)
class KalmanNoise:
    """Noise weights, relative to the box size (measurements behind each default:
    docs/benchmarks-tracking.md, "Why the tracker's defaults")."""

    # Process noise per reference frame (how far an object wanders from constant velocity);
    # the initial position std is 2 x pos_weight.
    pos_weight: float = 1.0 / 20.0
    vel_weight: float = 1.0 / 160.0
    # A detection's box noise: 4x ByteTrack's, so a track averages a few boxes instead of
    # following every wobble (and learning a noisy velocity from them).
    meas_weight: float = 0.2
    ref_fps: float = 30.0  # the rate the per-frame weights were tuned at (MOT17); converts them to seconds
    # A new track's velocity std, x vel_weight x ref_fps x size per second: wide, so the filter
    # learns a fast object's velocity from its first detections despite meas_weight.
    init_vel_factor: float = 20.0


class KalmanBoxFilter:
    """Stateless batch operations: the caller (the tracker) owns ``mean (N, 8)`` and ``cov (N, 8, 8)``."""

    def __init__(self, noise: KalmanNoise | None = None) -> None:
        self.noise = noise or KalmanNoise()

    def _sizes(self, mean: F64) -> F64:
        """(N, 4) size used for the std of x, y, w, h: (w, h, w, h)."""
        w = np.maximum(mean[:, 2], _MIN_SIZE)
        h = np.maximum(mean[:, 3], _MIN_SIZE)
        return np.stack([w, h, w, h], axis=1)

    def initiate(self, measurements: np.ndarray, size_vel_factor: float | None = None) -> tuple[F64, F64]:
        """(N, 4) cxcywh -> mean (N, 8) with zero velocity, cov (N, 8, 8) diagonal.
        size_vel_factor: init_vel_factor for the size's rate of change (w, h) when not the
        centre's."""
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
        n = z.shape[0]
        mean = np.zeros((n, 8))
        mean[:, :4] = z
        size = self._sizes(mean)
        nz = self.noise
        size_factor = nz.init_vel_factor if size_vel_factor is None else size_vel_factor
        vel = np.array([nz.init_vel_factor] * 2 + [size_factor] * 2) * nz.vel_weight * nz.ref_fps
        std = np.concatenate([2 * nz.pos_weight * size, vel * size], axis=1)
        cov = np.zeros((n, 8, 8))
        idx = np.arange(8)
        cov[:, idx, idx] = std**2
        return mean, cov

    def predict(self, mean: F64, cov: F64, dt: float) -> tuple[F64, F64]:
        """Advance every track by ``dt`` seconds (>= 0). Returns new arrays."""
        if mean.shape[0] == 0 or dt <= 0:
            return mean.copy(), cov.copy()
        nz = self.noise
        steps = dt * nz.ref_fps  # elapsed time in reference frames: variance grows linearly
        size = self._sizes(mean)
        q_pos = (nz.pos_weight * size) ** 2 * steps
        q_vel = (nz.vel_weight * nz.ref_fps * size) ** 2 * steps
        f = np.eye(8)
        f[np.arange(4), np.arange(4) + 4] = dt
        new_mean = mean @ f.T
        new_mean[:, 2:4] = np.maximum(new_mean[:, 2:4], _MIN_SIZE)
        new_cov = f @ cov @ f.T
        idx = np.arange(8)
        new_cov[:, idx, idx] += np.concatenate([q_pos, q_vel], axis=1)
        return new_mean, new_cov

    def update(
        self, mean: F64, cov: F64, measurements: np.ndarray, meas_weight: float | None = None
    ) -> tuple[F64, F64]:
        """Correct N tracks with N measurements (cxcywh, row-aligned). Returns new arrays.
        meas_weight: this measurement's noise (fraction of the box size) when it is not a
        detection's (``noise.meas_weight``), e.g. a box moved by optical flow."""
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
        if z.shape[0] == 0:
            return mean.copy(), cov.copy()
        weight = self.noise.meas_weight if meas_weight is None else meas_weight
        r = (weight * self._sizes(mean)) ** 2
        s = cov[:, :4, :4].copy()
        idx = np.arange(4)
        s[:, idx, idx] += r
        pht = cov[:, :, :4]  # P H^T, (N, 8, 4)
        # K = P H^T S^-1, solved rather than inverted: S is symmetric positive definite.
        gain = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = z - mean[:, :4]
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = cov - gain @ cov[:, :4, :]
        new_mean[:, 2:4] = np.maximum(new_mean[:, 2:4], _MIN_SIZE)
        return new_mean, new_cov

"""Which camera frames the detector sees: the rate split between detection and motion. Pure
Python (no cv2, no numpy): one decision per frame, in capture order.

Settings (``detect_every`` / ``detect_fps``; at most one of them):

- ``detect_every: k`` - the detector runs on frames 0, k, 2k, ... of the source;
- ``detect_fps: N`` - on the frame nearest each multiple of 1/N s of the source's timeline
  (timestamps, so a variable camera rate is fine); N may not exceed the source's rate;
- ``detect_fps: auto`` - as often as the detector keeps up: on a live source, whenever it is free
  (newest-frame policy); on a file, every k-th frame with k = the detector's measured time per
  inference / the source's frame interval, rounded up (what the same board would do live).

In every mode a frame that arrives while the detector is still busy with an earlier one is
carried by motion instead (``decide(..., detector_busy=True)`` is always False): a board that
cannot keep up lowers its own detection rate rather than queueing frames and falling behind.

Wiring (the pipeline, per camera):

    split = RateSplit(plan_rate(settings.detect_every, settings.detect_fps, source_fps), live=...)
    for frame in source:                                   # capture order
        detect = split.decide(frame.timestamp, detector_busy=<inference running?> if live else None)
        ...                                               # detector or None -> MotionTracker.step
        split.inference_done(seconds)                     # after each inference
    split.stats()  -> RateStats for /metrics, MQTT stats and the run summary
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from edgetally.errors import ConfigError

AUTO = "auto"
_WINDOW_S = 10.0  # rates in the stats are over this many recent seconds
_EMA = 0.1  # smoothing of the camera frame interval and the inference time


@dataclass(frozen=True)
class RatePlan:
    """Validated rate settings: detect_every k (detect_fps None), detect_fps N, or auto."""

    detect_every: int = 1
    detect_fps: float | None = None
    auto: bool = False

    def describe(self) -> str:
        if self.auto:
            return "detector as fast as it keeps up (auto)"
        if self.detect_fps is not None:
            return f"detector at {self.detect_fps:g} per second"
        return "detector on every frame" if self.detect_every == 1 else f"detector on every {self.detect_every}th frame"


@dataclass(frozen=True)
class RateStats:
    """What a board reports: rates over the last ~10 s, totals since the start."""

    camera_fps: float  # frames delivered per second
    detect_fps: float  # frames the detector saw per second
    frames: int  # total frames
    detected: int  # frames the detector saw
    propagated: int  # frames carried by motion
    detect_every: float  # current average frames per detection (1.0 = every frame)
    infer_ms: float  # smoothed detector time per inference (0 before the first)

    def to_json(self) -> dict[str, float | int]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def plan_rate(detect_every: object = None, detect_fps: object = None, source_fps: float | None = None) -> RatePlan:
    """Validate the two settings as given by a config file or the command line (numbers or
    strings). ConfigError (exit 2) for both at once, a rate that is not a number, zero,
    negative, or (when the source's rate is known) above it, or a k that is not a whole number."""
    if detect_every is not None and detect_fps is not None:
        raise ConfigError("detect_every and detect_fps: set one of them, not both")
    if detect_fps is not None:
        if isinstance(detect_fps, str) and detect_fps.strip().lower() == AUTO:
            return RatePlan(auto=True)
        fps = _number("detect_fps", detect_fps, "a number of detections per second or 'auto'")
        if fps <= 0:
            raise ConfigError(f"detect_fps: must be > 0 (or 'auto'), got {detect_fps!r}")
        if source_fps is not None and source_fps > 0 and fps > source_fps * 1.01:
            raise ConfigError(
                f"detect_fps: {fps:g} per second is above the source's {source_fps:g} frames "
                "per second; the detector cannot see frames that do not exist"
            )
        return RatePlan(detect_fps=fps)
    if detect_every is None:
        return RatePlan()
    k = _number("detect_every", detect_every, "a whole number of frames >= 1")
    if k != int(k) or k < 1:
        raise ConfigError(f"detect_every: expected a whole number of frames >= 1, got {detect_every!r}")
    return RatePlan(detect_every=int(k))


def _number(key: str, value: object, expected: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {expected}, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    return out


class RateSplit:
    """Decides, frame by frame, "detect" (True) or "carry by motion" (False). One per camera."""

    def __init__(self, plan: RatePlan | None = None, live: bool = False) -> None:
        self.plan = plan or RatePlan()
        self.live = live
        self._n = 0  # frames decided
        self._detected = 0
        self._since_detect = 0  # frames since the last detection
        self._due: float | None = None  # detect_fps: time of the next detection
        self._last_ts: float | None = None
        self._interval: float | None = None  # smoothed camera frame interval, s
        self._infer_s: float | None = None  # smoothed inference time, s
        self._recent: deque[tuple[float, bool]] = deque(maxlen=4096)
        self._lock = threading.Lock()  # decide() runs on the capture thread, stats() on the frame loop

    def decide(self, timestamp: float, detector_busy: bool | None = None) -> bool:
        """Call once per frame in capture order. True: run the detector on this frame."""
        with self._lock:
            self._track_interval(timestamp)
            detect = (not detector_busy) and self._wanted(timestamp)
            self._record(timestamp, detect)
        return detect

    def inference_done(self, seconds: float) -> None:
        """The detector finished one inference that took ``seconds`` (auto mode adapts to it)."""
        s = max(0.0, float(seconds))
        self._infer_s = s if self._infer_s is None else self._infer_s + _EMA * (s - self._infer_s)

    def stats(self) -> RateStats:
        with self._lock:
            frames, detected, recent = self._n, self._detected, list(self._recent)
        span = recent[-1][0] - recent[0][0] if len(recent) > 1 else 0.0
        n_recent = len(recent)
        d_recent = sum(1 for _, d in recent if d)
        camera_fps = (n_recent - 1) / span if span > 0 else 0.0
        return RateStats(
            camera_fps=camera_fps,
            detect_fps=camera_fps * d_recent / n_recent if n_recent else 0.0,
            frames=frames,
            detected=detected,
            propagated=frames - detected,
            detect_every=n_recent / d_recent if d_recent else 0.0,
            infer_ms=1000.0 * (self._infer_s or 0.0),
        )

    # -- internals ----------------------------------------------------------------------

    def _wanted(self, timestamp: float) -> bool:
        plan = self.plan
        if self._detected == 0:
            return True  # the first frame a free detector sees: tracks need a start
        if plan.auto:
            return self.live or self._since_detect + 1 >= self._auto_every()
        if plan.detect_fps is not None:
            half = 0.5 * (self._interval or 0.0)  # the frame nearest the due time
            return self._due is None or timestamp >= self._due - half
        return self._since_detect + 1 >= plan.detect_every

    def _auto_every(self) -> int:
        if self._infer_s is None or not self._interval:
            return 1
        return max(1, math.ceil(self._infer_s / self._interval - 1e-9))

    def _track_interval(self, timestamp: float) -> None:
        if self._last_ts is not None and timestamp > self._last_ts:
            dt = timestamp - self._last_ts
            self._interval = dt if self._interval is None else self._interval + _EMA * (dt - self._interval)
        self._last_ts = timestamp

    def _record(self, timestamp: float, detect: bool) -> None:
        self._n += 1
        if detect:
            self._detected += 1
            self._since_detect = 0
            if self.plan.detect_fps is not None:
                period = 1.0 / self.plan.detect_fps
                # Keep the grid (N per second on average); a late detection (busy detector, a gap
                # in the source) restarts it from now instead of bursting to catch up.
                due = timestamp + period if self._due is None else self._due + period
                self._due = due if due > timestamp else timestamp + period
        else:
            self._since_detect += 1
        self._recent.append((timestamp, detect))
        while len(self._recent) > 1 and self._recent[-1][0] - self._recent[0][0] > _WINDOW_S:
            self._recent.popleft()

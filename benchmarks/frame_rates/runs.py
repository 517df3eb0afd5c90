"""One pass of a tracking + counting stack over a clip at one frame-rate setting.

Two stacks, fed the same detections on the same frames:

- ``ours``: edgetally's Tracker (+ FlowPropagator between detections, through MotionTracker)
  and LineCounter, as the runner wires them;
- ``peer``: Roboflow's ``trackers`` ByteTrack (default settings, frame_rate = the rate it is fed)
  and supervision's LineZone (default settings): what people pick instead; ``peer-thr``: the
  same with our tracker's score thresholds (PEER_THRESHOLDS). Between detections
  it is fed its own last tracked boxes moved by the same optical flow (as in the issue's
  experiment), since it has no propagation of its own.

``ideal``: the line counter fed the true identities of the same detections (MOT17-derived only):
the error left with perfect association.

Two modes: ``input`` - only every k-th frame exists (a camera or decoder that delivers k times
fewer frames); ``detect`` - every frame exists, the detector runs on the frames a RateSplit at
N per second picks, and flow carries the tracks on the others.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.frame_rates.clips import Clip, CountLine
from edgetally.motion.rate import RateSplit, plan_rate
from edgetally.structures import Detections

DIRECTIONS = ("in", "out")


@dataclass(frozen=True)
class Setting:
    mode: str  # "input" | "detect"
    rate: float  # requested frames (input) or inferences (detect) per second
    phase: int  # first frame of the grid


@dataclass
class RunResult:
    counts: dict[str, dict[str, int]]
    detected: int  # frames the detector ran on
    frames: int  # frames the stack saw
    flow_ms: list[float] = field(default_factory=list)  # thread CPU time per propagated frame
    track_ms: float = 0.0  # thread CPU time of tracker + counter, summed


def detect_mask(clip: Clip, setting: Setting) -> np.ndarray:
    """Which frames the detector runs on (input mode: which frames exist at all)."""
    n = clip.num_frames
    mask = np.zeros(n, bool)
    if setting.mode == "input":
        k = input_divisor(clip.fps, setting.rate)
        mask[setting.phase :: k] = True
        return mask
    split = RateSplit(plan_rate(detect_fps=min(setting.rate, clip.fps), source_fps=clip.fps))
    for i in range(setting.phase, n):
        mask[i] = split.decide(i / clip.fps)
    return mask


def input_divisor(fps: float, rate: float) -> int:
    return max(1, round(fps / rate))


def error(results: Sequence[tuple[Clip, dict[str, dict[str, int]]]]) -> dict[str, float]:
    """sum |counted - true| / sum true over every (clip, line, direction); net error too."""
    true = sum(c.truth[ln][d] for c, _ in results for ln in c.truth for d in DIRECTIONS)
    diff = [counts[ln][d] - c.truth[ln][d] for c, counts in results for ln in c.truth for d in DIRECTIONS]
    return {
        "true": true,
        "counted": true + sum(diff),
        "abs_error": sum(abs(x) for x in diff) / true if true else 0.0,
        "net_error": sum(diff) / true if true else 0.0,
    }


def run_ours(
    clip: Clip,
    mask: np.ndarray,
    flow: bool,
    grey: list[np.ndarray] | None,
    tracker_params: dict[str, Any],
    counter_params: dict[str, Any],
    flow_params: dict[str, Any],
) -> RunResult:
    from edgetally.counting import LineCounter
    from edgetally.motion import FlowConfig, FlowPropagator
    from edgetally.motion.stage import MotionTracker
    from edgetally.tracking import KalmanNoise, Tracker, TrackerConfig

    noise = {k.removeprefix("noise."): v for k, v in tracker_params.items() if k.startswith("noise.")}
    plain = {k: v for k, v in tracker_params.items() if not k.startswith("noise.")}
    config = TrackerConfig(**plain, noise=KalmanNoise(**noise))  # "noise.KEY=VALUE" sets KalmanNoise
    stage = MotionTracker(Tracker(config), FlowPropagator(FlowConfig(**flow_params)))
    params = {"forget_after_s": config.track_buffer_s + 1.0, **counter_params}  # as build_counters
    counters = [LineCounter(ln.name, ln.p1, ln.p2, clip.labels, **params) for ln in clip.lines]
    out = RunResult({ln.name: dict.fromkeys(DIRECTIONS, 0) for ln in clip.lines}, int(mask.sum()), 0)
    for i in range(clip.num_frames):
        if not (mask[i] or flow):
            continue
        ts = i / clip.fps
        image = grey[i] if grey is not None else None
        c0 = time.thread_time()
        if mask[i]:
            tracks = (
                stage.tracker.update(clip.detections[i], ts)
                if image is None
                else stage.step(image, clip.detections[i], ts)
            )
        else:
            tracks = stage.step(image, None, ts)
            out.flow_ms.append(1000.0 * (time.thread_time() - c0))
            c0 = time.thread_time()
        events = [e for c in counters for e in c.update(tracks, i, ts)]
        out.track_ms += 1000.0 * (time.thread_time() - c0)
        out.frames += 1
        _tally(out.counts, events)
    _tally(out.counts, [e for c in counters for e in c.flush()])
    return out


def _tally(counts: dict[str, dict[str, int]], events: list) -> None:
    for e in events:
        counts[e.counter][e.direction] += 1


def run_ideal(clip: Clip, mask: np.ndarray) -> RunResult:
    """The counter fed the detections on ``mask``'s frames with their TRUE identities (false
    positives dropped): perfect association on the same boxes, what no tracker can beat without
    smoothing them. Clips with ``true_ids`` only (MOT17-derived)."""
    from edgetally.counting import LineCounter
    from edgetally.structures import Tracks
    from edgetally.tracking import TrackerConfig

    assert clip.true_ids is not None
    params = {"forget_after_s": TrackerConfig().track_buffer_s + 1.0}  # as run_ours
    counters = [LineCounter(ln.name, ln.p1, ln.p2, clip.labels, **params) for ln in clip.lines]
    out = RunResult({ln.name: dict.fromkeys(DIRECTIONS, 0) for ln in clip.lines}, int(mask.sum()), 0)
    for i in np.flatnonzero(mask):
        d, ids = clip.detections[i], clip.true_ids[i]
        real = ids >= 0
        tracks = Tracks(ids[real], d.xyxy[real], d.scores[real], d.class_ids[real])
        _tally(out.counts, [e for c in counters for e in c.update(tracks, int(i), i / clip.fps)])
        out.frames += 1
    _tally(out.counts, [e for c in counters for e in c.flush()])
    return out


# The peer with its defaults starts tracks at 0.7 and calls 0.6 "high": nano detectors score
# real cars 0.3-0.6, so it is also run with our tracker's thresholds (new track 0.5, high 0.4).
PEER_THRESHOLDS = {"track_activation_threshold": 0.5, "high_conf_det_threshold": 0.4}


def run_peer(
    clip: Clip,
    mask: np.ndarray,
    flow: bool,
    grey: list[np.ndarray] | None,
    rate_fed: float,
    thresholds: dict[str, float] | None = None,
) -> RunResult:
    import supervision as sv
    import trackers

    from edgetally.motion import FlowPropagator

    tracker = trackers.ByteTrackTracker(frame_rate=rate_fed, **(thresholds or {}))
    zones = {ln.name: (sv.LineZone(sv.Point(*ln.p1), sv.Point(*ln.p2)), _peer_in_is_ours(ln)) for ln in clip.lines}
    prop = FlowPropagator()
    last = None
    out = RunResult({ln.name: dict.fromkeys(DIRECTIONS, 0) for ln in clip.lines}, int(mask.sum()), 0)
    for i in range(clip.num_frames):
        if not (mask[i] or flow):
            continue
        if mask[i]:
            det = _to_sv(clip.detections[i])
            if flow:
                prop.observe(grey[i])
        elif last is not None and len(last):
            moved, ok = prop.step(grey[i], last.xyxy)
            det = sv.Detections(xyxy=moved[ok], confidence=last.confidence[ok], class_id=last.class_id[ok])
        else:
            prop.observe(grey[i])
            det = sv.Detections.empty()
        # Every box it returns is carried, its unconfirmed ones (id -1) too: it confirms a track
        # only after matches on consecutive frames, so carrying confirmed ones only starts none.
        last = tracker.update(det)
        for zone, _ in zones.values():
            zone.trigger(last)  # LineZone ignores id -1
        out.frames += 1
    for name, (zone, same) in zones.items():
        ins, outs = (zone.in_count, zone.out_count) if same else (zone.out_count, zone.in_count)
        out.counts[name] = {"in": int(ins), "out": int(outs)}
    return out


def _to_sv(d: Detections):  # -> sv.Detections
    import supervision as sv

    return sv.Detections(xyxy=d.xyxy.astype(np.float32), confidence=d.scores, class_id=d.class_ids)


def _peer_in_is_ours(line: CountLine) -> bool:
    """Whether LineZone's "in" is our "in" for this line: probed with one box moving from our
    negative side to our positive side (s = (p2 - p1) x (P - p1), see edgetally/counting/line.py)."""
    import supervision as sv

    p1, p2 = np.array(line.p1), np.array(line.p2)
    mid, d = (p1 + p2) / 2, p2 - p1
    normal = np.array([-d[1], d[0]]) / np.hypot(*d)  # s grows along this direction
    zone = sv.LineZone(sv.Point(*p1), sv.Point(*p2))
    for step in (-20.0, 20.0):
        c = mid + step * normal
        box = np.array([[c[0] - 2, c[1] - 4, c[0] + 2, c[1]]], np.float32)  # bottom-centre on c
        zone.trigger(sv.Detections(xyxy=box, tracker_id=np.array([1]), class_id=np.array([0])))
    return zone.in_count == 1

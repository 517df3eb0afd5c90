"""The trackers under test behind one function: our runner's Tracker and Roboflow's `trackers`.

Every tracker gets the same per-frame detections and is timed the same way: perf_counter around
its update call only. Inputs are converted to each tracker's own type before the clock starts,
and outputs after it stops, so conversion cost never counts against anyone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgetally.cli.track import TrackRun, track_sequence
from edgetally.structures import Detections
from edgetally.tracking.mot_io import FRAME, ID, MOT_COLUMNS, SCORE, H, MotTable, W, X, Y

OURS = "ours"
PEERS = ("bytetrack", "ocsort", "sort")
TRACKER_NAMES = (OURS, *PEERS)


def run_tracker(
    name: str, frames: list[Detections], frame_rate: float, ours_overrides: dict[str, Any] | None = None
) -> TrackRun:
    """Track a whole sequence with tracker `name`; frames[i] is frame i + 1 at `frame_rate` fps."""
    if name == OURS:
        from edgetally.tracking import Tracker, TrackerConfig

        config = TrackerConfig(**(ours_overrides or {}))
        return track_sequence(Tracker(config), frames, frame_rate)
    if name in PEERS:
        return _run_peer(_peer_factory(name)(frame_rate), frames)
    raise ValueError(f"tracker: expected one of {TRACKER_NAMES}, got {name!r}")


def _peer_factory(name: str) -> Callable[[float], Any]:
    """The `trackers` package's tracker with its default settings; only frame_rate is set, as
    its documentation asks, so its frame-count buffers mean the same time at every fps."""
    import trackers

    cls = {"bytetrack": trackers.ByteTrackTracker, "ocsort": trackers.OCSORTTracker, "sort": trackers.SORTTracker}[name]
    return lambda fps: cls(frame_rate=fps)


def _run_peer(tracker: Any, frames: list[Detections]) -> TrackRun:
    import supervision as sv

    inputs = [sv.Detections(xyxy=d.xyxy.astype(np.float32), confidence=d.scores, class_id=d.class_ids) for d in frames]
    outputs = []
    spent = 0.0
    for det in inputs:
        t0 = time.perf_counter()
        outputs.append(tracker.update(det))
        spent += time.perf_counter() - t0
    parts = [_peer_rows(i + 1, out) for i, out in enumerate(outputs)]
    table = np.concatenate(parts) if parts else np.full((0, MOT_COLUMNS), -1.0)
    return TrackRun(table=table, frames=len(inputs), seconds=spent)


def _peer_rows(frame: int, out: Any) -> MotTable:
    """sv.Detections with tracker_id (-1 = not a confirmed track) -> MOT rows."""
    ids = np.asarray(out.tracker_id if out.tracker_id is not None else [], dtype=np.int64)
    keep = ids >= 0
    xyxy = np.asarray(out.xyxy, dtype=np.float64).reshape(-1, 4)[keep]
    rows = np.full((int(keep.sum()), MOT_COLUMNS), -1.0)
    rows[:, FRAME], rows[:, ID] = frame, ids[keep]
    rows[:, X], rows[:, Y] = xyxy[:, 0], xyxy[:, 1]
    rows[:, W], rows[:, H] = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    conf = out.confidence if out.confidence is not None else np.ones(len(ids))
    rows[:, SCORE] = np.asarray(conf, dtype=np.float64)[keep]
    return rows

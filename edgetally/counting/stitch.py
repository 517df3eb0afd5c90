"""Fixed-lag resolution of crossings split between two track ids. Pure geometry, numpy only.

At a low detection rate a tracker can lose an object just before a line (missed detections,
an occluder) and find it again just past it under a new id. Neither id crosses the line, so the
crossing is lost. Two tracklets are one object that crossed when (all of):

- A, the predecessor, was last seen armed on one side and had not passed the line;
- B appears (is first armed) on the other side within ``gap_s`` of A's last report;
- same class; A was moving towards the line;
- B's position is where A's own motion would have taken it by then: within TOLERANCE_H of A's
  box height (plus SPEED_TOLERANCE of the distance A would travel in the gap) of A's last anchor
  + velocity x gap, and the move from A's last anchor to B's crosses the counting segment.

The decision waits ``lag_s``: if A is reported again in that time it was not B (both go on on
their own); otherwise the crossing is committed with the time at which the straight path from A
to B meets the line. A second is about what a board at 3-8 detections per second needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgetally.counting.geometry import crossing_param, signed_distance

# B must lie within this many box heights of A's extrapolated path: a box's anchor jitters by a
# tenth of its height, an extrapolation over a second of a car that brakes or a person who
# turns by more; a neighbour in the next lane is about one height away.
TOLERANCE_H = 1.0
# plus this share of the distance A's velocity covers in the gap (objects change speed).
SPEED_TOLERANCE = 0.3


class TrackState(Protocol):
    """What a stitch needs to know of a counter's per-track state."""

    point: list[float]
    side: int
    armed: int
    last_seen: float
    class_id: int
    height: float
    velocity: list[float] | None


@dataclass(frozen=True)
class Stitch:
    """A pending crossing of the object tracked as ``before`` then ``after``."""

    before: int  # A's track id: its reappearance within the lag cancels the stitch
    after: int  # B's track id (the event's track_id)
    side: int  # B's side: +1 -> "in", -1 -> "out"
    crossed_at: float  # timestamp at which A -> B meets the line
    due: float  # commit time (B's first arming + lag_s)


def find_predecessor(
    b_id: int,
    b: TrackState,
    states: Mapping[int, TrackState],
    now: float,
    gap_s: float,
    p1: np.ndarray,
    p2: np.ndarray,
    taken: set[int],
) -> tuple[int, float] | None:
    """The best predecessor A of a newly armed track ``b`` (its id and the crossing time), or
    None. ``taken``: ids already the predecessor of a pending stitch."""
    best: tuple[float, int, float] | None = None
    for a_id, a in states.items():
        if a_id == b_id or a_id in taken or not _could_precede(a, b, now, gap_s, p1, p2):
            continue
        gap = now - a.last_seen
        v = np.asarray(a.velocity)
        predicted = np.asarray(a.point) + v * gap
        miss = float(np.hypot(*(np.asarray(b.point) - predicted)))
        allowed = TOLERANCE_H * max(a.height, b.height) + SPEED_TOLERANCE * float(np.hypot(*v)) * gap
        crossed_at = _crossing_time(a, b, now, p1, p2)
        if miss <= allowed and crossed_at is not None and (best is None or miss / allowed < best[0]):
            best = (miss / allowed, a_id, crossed_at)
    return None if best is None else (best[1], best[2])


def _could_precede(a: TrackState, b: TrackState, now: float, gap_s: float, p1: np.ndarray, p2: np.ndarray) -> bool:
    """Cheap tests first: timing, class, sides, a velocity towards the line."""
    if not (0.0 < now - a.last_seen <= gap_s) or a.class_id != b.class_id or a.velocity is None:
        return False
    if a.armed == 0 or a.side != a.armed or b.side != -a.armed:
        return False
    d = p2 - p1
    ds_dt = (d[0] * a.velocity[1] - d[1] * a.velocity[0]) / float(np.hypot(*d))  # rate of change of s
    return ds_dt * a.armed < 0  # |s| shrinking: moving towards the line


def _crossing_time(a: TrackState, b: TrackState, now: float, p1: np.ndarray, p2: np.ndarray) -> float | None:
    """When the straight path from A's last anchor to B's meets the line; None when it misses
    the counting segment."""
    pts = np.array([a.point, b.point], dtype=np.float64)
    s = signed_distance(pts, p1, p2)
    t = crossing_param(pts[:1], pts[1:], s[:1], s[1:], p1, p2)[0]
    if not 0.0 <= t <= 1.0 or s[0] == s[1]:
        return None
    alpha = float(s[0] / (s[0] - s[1]))
    return a.last_seen + alpha * (now - a.last_seen)

"""Polygon zone counter: entries, exits and current occupancy per class. numpy only.

Semantics:

- A track is inside when its anchor is inside the polygon (even-odd rule). With hysteresis_px > 0
  its state only changes when the anchor is more than hysteresis_px from the boundary, so box
  flicker on the boundary does not produce enter/exit pairs.
- A track that leaves counts ``exited`` once it has stayed outside for ``settle_s``; back inside
  before that, it never left (no exit, no second entry). The event keeps the frame and time at
  which it left. With a slow detector a box carried by optical flow and then snapped to the next
  detection can step out of a zone and back on its edge; without the settle time each such step
  was an exit and a second entry. A pending exit is committed when the track is forgotten or the
  stream ends; until then the track counts as inside (occupancy lags a leaving object by settle_s).
- A track first seen inside (it appeared there: the zone touches the frame edge, or the track was
  confirmed inside) counts as ``entered``, and a track forgotten while inside (unseen for
  forget_after_s: it left the frame or the detector lost it) counts as ``exited``. So, at any time,
  entered - exited == occupancy, per class, and occupancy never leaks.
- A fast move at low FPS that passes right through a thin zone (both anchors outside, the move
  crossing two or more edges) counts as ``entered`` and ``exited``.
- Event class: the track's class at the time of the event (the tracker's majority class).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from edgetally.counting.geometry import (
    PolygonGeometry,
    anchor_points,
    segment_edge_crossings,
)
from edgetally.counting.quiet import QuietTracks
from edgetally.structures import CountEvent, Tracks


@dataclass(slots=True)
class _ZoneTrack:
    point: list[float]
    inside: bool
    last_seen: float
    class_id: int
    score: float
    left_at: tuple[int, float] | None = None  # (frame, time) it was first clearly outside: a pending exit


_EPS_S = 1e-6  # timestamps like i / fps: 0.7 - 0.2 must count as 0.5 s


class ZoneCounter:
    """Counts tracks entering and leaving a polygon; reports occupancy per class."""

    kind = "zone"
    directions = ("entered", "exited")

    def __init__(
        self,
        name: str,
        polygon: Sequence[Sequence[float]],
        labels: Sequence[str],
        anchor: str = "bottom_center",
        hysteresis_px: float = 2.0,
        classes: Collection[str] | None = None,
        forget_after_s: float = 3.0,
        settle_s: float = 0.5,
    ) -> None:
        poly = np.asarray(polygon, dtype=np.float64)
        if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
            raise ValueError(f"zone {name!r}: expected a polygon of >= 3 (x, y) points, got shape {poly.shape}")
        if min(hysteresis_px, forget_after_s, settle_s) < 0:
            raise ValueError(f"zone {name!r}: hysteresis_px, forget_after_s and settle_s must be >= 0")
        anchor_points(np.zeros((0, 4)), anchor)  # validates the anchor name
        self.name = name
        self.polygon = poly
        self._geom = PolygonGeometry(poly)
        self.labels = list(labels)
        self.anchor = anchor
        self.hysteresis_px = float(hysteresis_px)
        self.classes = None if classes is None else frozenset(classes)
        self.forget_after_s = float(forget_after_s)
        self.settle_s = float(settle_s)
        self._tracks: dict[int, _ZoneTrack] = {}
        self._quiet = QuietTracks(self.forget_after_s)

    @property
    def points(self) -> tuple[tuple[float, float], ...]:
        """The polygon in source pixels."""
        return tuple((float(x), float(y)) for x, y in self.polygon)

    @property
    def num_tracked(self) -> int:
        return len(self._tracks)

    @property
    def track_ids(self) -> frozenset[int]:
        """Ids of the tracks this counter holds state for."""
        return frozenset(self._tracks)

    @property
    def geometry(self) -> tuple[object, ...]:
        """What the per-track state depends on: a counter with equal geometry can take it over."""
        return ("zone", tuple(map(tuple, self.polygon.tolist())), self.anchor)

    def take_state(self, other: ZoneCounter) -> None:
        """Adopt ``other``'s per-track state (a reload with unchanged geometry); ``other`` is left empty."""
        self._tracks, other._tracks = other._tracks, {}

    def start_quiet(self, track_ids: Collection[int]) -> None:
        """Tracks alive before this counter existed (a reload that changed its polygon) are taken
        in where they are next seen, without an ``entered`` event; they count ``exited`` when
        they leave (the entry was counted by the zone as it was)."""
        self._quiet.add(track_ids)

    def occupancy(self) -> dict[str, int]:
        """Tracks inside now (including ones briefly unseen, until forgotten), per class."""
        out: dict[str, int] = {}
        for st in self._tracks.values():
            name = self._class_name(st.class_id)
            if st.inside and self._counted(name):
                out[name] = out.get(name, 0) + 1
        return out

    def update(self, tracks: Tracks, frame_index: int, timestamp: float) -> list[CountEvent]:
        events: list[CountEvent] = []
        points = anchor_points(tracks.xyxy, self.anchor)
        ids = tracks.ids.tolist()
        states = [self._tracks.get(tid) for tid in ids]
        inside_arr, dist = self._geom.inside_and_distance(points)
        inside = inside_arr.tolist()
        clear = (dist > self.hysteresis_px).tolist()
        passes = self._pass_through(states, points, inside_arr).tolist()
        rows = zip(
            ids, states, points.tolist(), inside, clear, passes, tracks.class_ids.tolist(), tracks.scores.tolist()
        )
        for tid, st, point, inside_i, clear_i, pass_i, cid, score in rows:
            if st is None and self._quiet.take(tid):  # alive before a reload: taken in where it is
                self._tracks[tid] = _ZoneTrack(point, inside_i, timestamp, cid, score)
                continue
            if st is None:
                st = self._tracks[tid] = _ZoneTrack(point, False, timestamp, cid, score)
                clear_i = True  # first sight: no history to protect against flicker
            st.point, st.last_seen, st.class_id, st.score = point, timestamp, cid, score
            if st.inside and inside_i:
                st.left_at = None  # back inside (even within the band) before settling: it never left
            elif st.inside and clear_i and st.left_at is None:
                st.left_at = (frame_index, timestamp)
            elif not st.inside and clear_i and inside_i:
                st.inside = True
                self._emit(st, tid, "entered", frame_index, timestamp, events)
            elif not st.inside and not inside_i and pass_i:
                self._emit(st, tid, "entered", frame_index, timestamp, events)
                self._emit(st, tid, "exited", frame_index, timestamp, events)
        self._quiet.tick(timestamp)
        self._settle(timestamp, events)
        self._expire(frame_index, timestamp, events)
        return events

    def flush(self) -> list[CountEvent]:
        """End of stream: commit the exits still settling (those objects did leave), then drop
        state (occupancy becomes 0 without exit events for the rest: they did not leave)."""
        events: list[CountEvent] = []
        for tid, st in self._tracks.items():
            if st.left_at is not None:
                self._exit(st, tid, events)
        self._tracks.clear()
        return events

    def _pass_through(self, states: list[_ZoneTrack | None], points: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """(N,) bool: a move from outside to outside that crossed >= 2 polygon edges."""
        was_out = np.array([st is not None and not st.inside for st in states], dtype=bool)
        cand = np.flatnonzero(was_out & ~inside)
        out = np.zeros(len(states), dtype=bool)
        if cand.size:
            prev = np.array([states[i].point for i in cand.tolist()]).reshape(-1, 2)  # type: ignore[union-attr]
            near = self._geom.may_cross(prev, points[cand])
            if near.any():
                cand, prev = cand[near], prev[near]
                out[cand] = segment_edge_crossings(prev, points[cand], self.polygon) >= 2
        return out

    def _emit(
        self, st: _ZoneTrack, tid: int, direction: str, frame_index: int, ts: float, events: list[CountEvent]
    ) -> None:
        name = self._class_name(st.class_id)
        if self._counted(name):
            events.append(CountEvent(self.name, "zone", name, direction, tid, frame_index, ts, st.score))  # type: ignore[arg-type]

    def _exit(self, st: _ZoneTrack, tid: int, events: list[CountEvent]) -> None:
        """Commit a pending exit, stamped where the track left."""
        frame_index, left_ts = st.left_at  # type: ignore[misc]
        st.inside, st.left_at = False, None
        self._emit(st, tid, "exited", frame_index, left_ts, events)

    def _settle(self, timestamp: float, events: list[CountEvent]) -> None:
        """Commit the exits of tracks outside for settle_s (reported this frame or not)."""
        for tid, st in self._tracks.items():
            if st.left_at is not None and timestamp - st.left_at[1] >= self.settle_s - _EPS_S:
                self._exit(st, tid, events)

    def _expire(self, frame_index: int, timestamp: float, events: list[CountEvent]) -> None:
        stale = [tid for tid, st in self._tracks.items() if timestamp - st.last_seen > self.forget_after_s]
        for tid in stale:
            st = self._tracks.pop(tid)
            if st.left_at is not None:
                self._exit(st, tid, events)
            elif st.inside:  # lost inside: it left unseen (the frame edge) or the detector lost it
                self._emit(st, tid, "exited", frame_index, timestamp, events)

    def _counted(self, name: str) -> bool:
        return self.classes is None or name in self.classes

    def _class_name(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)

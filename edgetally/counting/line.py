"""Directed line counter with hysteresis. Pure geometry, numpy only.

The contract (the tests pin it down; the measurements behind each rule and default are in
docs/benchmarks-tracking.md, "Why the line counter's rules"):

- The line is the directed segment p1 -> p2; ``s(P) = (p2 - p1) x (P - p1) / |p2 - p1|`` is the
  signed distance of an anchor point P (bottom-centre by default). ``in`` = s goes from negative
  to positive, ``out`` the reverse (image coordinates, y down).
- A move (previous -> current anchor) changes a track's side when s changes sign; it *passes
  the line* only if it meets the counting segment, not its extension: a fast object that jumps
  across at a low frame rate counts, one walking around the end of the line does not.
- One crossing definition, shared with the tracking benchmark's truth: clearly on one side
  (|s| > band, band = max(hysteresis_px, hysteresis x box height)), then clearly on the other
  for ``settle_s`` without coming back to its first side's sign, or the track ends on the far
  side. Box flicker inside the band never counts; an object that stops on the line counts once.
- Every track has an *armed* side (where it was last clearly). A new track is armed from the
  detection that started it (``Tracks.first_xyxy``) when that was BIRTH_MARGIN bands clear of
  the line (a fast object may be confirmed already past it); otherwise it has no side until it
  is first clear (a new id on the line is usually an id switch: a miss beats a double count).
- Count once per crossing: after a commit the armed side flips (a real U-turn counts in, out).
- A track that passed the line and is forgotten (unseen for forget_after_s) or flushed at the
  end of a stream while still inside the band is committed (objects leaving at a frame edge).
- A track lost just before the line and a new id armed just past it, on the first one's path,
  are one crossing, decided up to stitch_lag_s later (edgetally/counting/stitch.py).
- smoothing_s (default 0 = off): EMA of each track's anchor with that time constant.
- Event time: ``frame_index`` / ``timestamp`` are those of the update in which the anchor
  passed the line (for a stitched crossing, where the path between the two tracks meets it),
  which can be before the update that emits the event.
- Per-track state is dropped forget_after_s after a track was last reported (bounded memory);
  set it >= the tracker's track_buffer_s so a re-found track keeps its history.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from edgetally.counting.geometry import anchor_points, crossing_param, signed_distance
from edgetally.counting.quiet import QuietTracks
from edgetally.counting.stitch import Stitch, find_predecessor
from edgetally.structures import CountEvent, Tracks

_EPS_S = 1e-6  # timestamps like i / fps: 0.7 - 0.2 must count as 0.5 s
# A track's first detection arms it only this many bands from the line: it is one raw box whose
# edges jitter by 5-10 % of its height, so nearer than that it says nothing about the side.
BIRTH_MARGIN = 3.0
# Time constant of each track's anchor velocity (an EMA of its moves): long enough to average a
# detector's box jitter, short enough to follow a car that brakes. Used by the stitching only.
VELOCITY_TAU_S = 0.3


@dataclass(slots=True)
class _LineTrack:
    """Mutable per-track state (owned by one LineCounter)."""

    point: list[float]  # last anchor [x, y]
    side: int  # side of the last anchor: +1 / -1; 0 while never clearly (outside the band) on a side
    armed: int  # committed side; a crossing is counted when leaving it clearly
    passed: bool  # the last side change went through the counting segment
    pass_frame: int
    pass_ts: float
    last_seen: float
    class_id: int
    score: float
    pending_since: float | None = None  # first time clearly on the far side of ``armed`` (settle clock)
    height: float = 0.0  # last box height, px
    velocity: list[float] | None = None  # anchor velocity, px/s (EMA over VELOCITY_TAU_S)


class LineCounter:
    """Counts confirmed tracks crossing a directed segment, per class and direction."""

    kind = "line"
    directions = ("in", "out")

    def __init__(
        self,
        name: str,
        p1: Sequence[float],
        p2: Sequence[float],
        labels: Sequence[str],
        anchor: str = "bottom_center",
        hysteresis_px: float = 4.0,
        classes: Collection[str] | None = None,
        forget_after_s: float = 3.0,
        hysteresis: float = 0.1,
        settle_s: float = 0.5,
        smoothing_s: float = 0.0,
        stitch_gap_s: float = 1.0,
        stitch_lag_s: float = 1.0,
    ) -> None:
        """labels: class names indexed by class id. classes: names to count (None = all).
        The dead band around the line is max(hysteresis_px, hysteresis x box height), per track
        and frame (see module docstring). stitch_gap_s / stitch_lag_s: a track lost before the
        line and a new one past it within stitch_gap_s are one crossing, decided stitch_lag_s
        later (edgetally/counting/stitch.py); stitch_gap_s 0 disables it."""
        self.name = name
        self.p1 = np.asarray(p1, dtype=np.float64).reshape(2)
        self.p2 = np.asarray(p2, dtype=np.float64).reshape(2)
        if np.allclose(self.p1, self.p2):
            raise ValueError(f"line {name!r}: p1 and p2 must differ, got {tuple(p1)} and {tuple(p2)}")
        if min(hysteresis_px, hysteresis, forget_after_s, settle_s, smoothing_s, stitch_gap_s, stitch_lag_s) < 0:
            raise ValueError(
                f"line {name!r}: hysteresis, hysteresis_px, forget_after_s, settle_s, smoothing_s and "
                "stitch_gap_s / stitch_lag_s must be >= 0"
            )
        anchor_points(np.zeros((0, 4)), anchor)  # validates the anchor name
        self.labels = list(labels)
        self.anchor = anchor
        self.hysteresis_px = float(hysteresis_px)
        self.hysteresis = float(hysteresis)
        self.classes = None if classes is None else frozenset(classes)
        self.forget_after_s = float(forget_after_s)
        self.settle_s = float(settle_s)
        self.smoothing_s = float(smoothing_s)
        self.stitch_gap_s = float(stitch_gap_s)
        self.stitch_lag_s = float(stitch_lag_s)
        self._tracks: dict[int, _LineTrack] = {}
        self._quiet = QuietTracks(self.forget_after_s)
        self._stitches: dict[int, Stitch] = {}  # pending, by the later track's id
        self._frames: deque[tuple[float, int]] = deque(maxlen=1024)  # (timestamp, frame index) seen

    @property
    def points(self) -> tuple[tuple[float, float], ...]:
        """The directed segment (p1, p2) in source pixels."""
        return (float(self.p1[0]), float(self.p1[1])), (float(self.p2[0]), float(self.p2[1]))

    @property
    def num_tracked(self) -> int:
        """Per-track states held now (bounded-memory tests watch this)."""
        return len(self._tracks)

    @property
    def track_ids(self) -> frozenset[int]:
        """Ids of the tracks this counter holds state for."""
        return frozenset(self._tracks)

    @property
    def geometry(self) -> tuple[object, ...]:
        """What the per-track state depends on: a counter with equal geometry can take it over."""
        return ("line", tuple(self.p1.tolist()), tuple(self.p2.tolist()), self.anchor)

    def take_state(self, other: LineCounter) -> None:
        """Adopt ``other``'s per-track state (a reload with unchanged geometry); ``other`` is left empty."""
        self._tracks, other._tracks = other._tracks, {}
        self._stitches, other._stitches = other._stitches, {}
        self._frames, other._frames = other._frames, deque(maxlen=1024)

    def start_quiet(self, track_ids: Collection[int]) -> None:
        """Tracks alive before this counter existed (a reload that changed its geometry) are
        armed where they are next clearly seen, never from their birth box: no crossing that
        happened before the reload is counted by the new line."""
        self._quiet.add(track_ids)

    def update(self, tracks: Tracks, frame_index: int, timestamp: float) -> list[CountEvent]:
        """Feed the tracker's output for one frame; return the crossings committed now."""
        events: list[CountEvent] = []
        self._frames.append((timestamp, frame_index))
        ids = tracks.ids.tolist()
        self._cancel_stitches(ids)
        states = [self._tracks.get(tid) for tid in ids]
        points = self._smoothed(states, anchor_points(tracks.xyxy, self.anchor), timestamp)
        new = [i for i, st in enumerate(states) if st is None and not self._quiet.take(ids[i])]
        self._quiet.tick(timestamp)
        armed_before = {tid for tid, st in zip(ids, states, strict=True) if st is not None and st.side != 0}
        birth_sides: dict[int, int] = {}
        if new and tracks.first_xyxy is not None:
            birth_sides = self._arm_at_birth(tracks, new, timestamp)
            states = [self._tracks.get(tid) for tid in ids]
        s = signed_distance(points, self.p1, self.p2)
        t = self._pass_params(states, points, s).tolist()
        heights = (tracks.xyxy[:, 3] - tracks.xyxy[:, 1]).tolist()
        band = self.band(tracks.xyxy).tolist()
        # Python scalars from here: the per-track state machine is branchy, numpy scalars are slow.
        rows = zip(
            ids,
            states,
            points.tolist(),
            s.tolist(),
            t,
            band,
            heights,
            tracks.class_ids.tolist(),
            tracks.scores.tolist(),
        )
        for tid, state, point, s_i, t_i, band_i, h_i, cid, score in rows:
            clear = abs(s_i) > band_i
            if state is None:
                side = ((s_i > 0) - (s_i < 0)) if clear else 0
                state = self._tracks[tid] = _LineTrack(point, side, side, False, -1, timestamp, timestamp, cid, score)
            elif state.side == 0:  # never clearly on one side yet: arm where it first gets clear
                state.side = state.armed = ((s_i > 0) - (s_i < 0)) if clear else 0
                _move(state, point, timestamp)
            else:
                self._observe(state, point, s_i, t_i, frame_index, timestamp)
                if clear:
                    self._commit_clear(state, tid, timestamp, events)
            state.class_id, state.score, state.height = cid, score, h_i
        # Stitch candidates: tracks first armed in this update, where they are now. One armed at its
        # first box on the near side and already past the line counts that crossing itself.
        first_armed = [tid for tid in ids if tid not in armed_before and self._tracks[tid].side != 0]
        self._stitch(
            [t for t in first_armed if birth_sides.get(t, self._tracks[t].side) == self._tracks[t].side], timestamp
        )
        self._commit_stitches(timestamp, events)
        self._expire(timestamp, events)
        return events

    def flush(self) -> list[CountEvent]:
        """End of stream: commit every crossing that passed the line but never got clear of the
        band (e.g. the last frames of a file), then drop all state."""
        events: list[CountEvent] = []
        self._commit_stitches(math.inf, events)
        for tid, state in self._tracks.items():
            self._commit_pending(state, tid, events)
        self._tracks.clear()
        return events

    def band(self, xyxy: np.ndarray) -> np.ndarray:
        """Half-width (px) of the dead band for each (N, 4) box: max(hysteresis_px, hysteresis x h)."""
        b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        return np.maximum(self.hysteresis_px, self.hysteresis * (b[:, 3] - b[:, 1]))

    # -- stages -----------------------------------------------------------------------------

    def _smoothed(self, states: list[_LineTrack | None], points: np.ndarray, timestamp: float) -> np.ndarray:
        """Exponential moving average of each track's anchor with time constant smoothing_s
        (frame-rate independent); new tracks start at their raw anchor."""
        if self.smoothing_s <= 0 or points.shape[0] == 0:
            return points
        known = [i for i, st in enumerate(states) if st is not None]
        if not known:
            return points
        prev = np.array([states[i].point for i in known])  # type: ignore[union-attr]
        dt = timestamp - np.array([states[i].last_seen for i in known])  # type: ignore[union-attr]
        alpha = 1.0 - np.exp(-np.maximum(dt, 0.0) / self.smoothing_s)
        out = points.astype(np.float64, copy=True)
        out[known] = prev + alpha[:, None] * (points[known] - prev)
        return out

    def _arm_at_birth(self, tracks: Tracks, new: list[int], timestamp: float) -> dict[int, int]:
        """New tracks (rows ``new``) whose first detection (``tracks.first_xyxy``) was more than
        BIRTH_MARGIN bands from the line start armed on its side, at its anchor, so the move from
        it to their first reported anchor is observed like any other move. A track is reported
        from its second matched detection on; at a low frame rate a fast object moves far in
        between and may be confirmed already past the line. Nearer first detections are left to
        the usual rule (no side until first clear). -> {track id: side} of those armed."""
        armed: dict[int, int] = {}
        first = tracks.first_xyxy[new]  # type: ignore[index]
        births = anchor_points(first, self.anchor)
        s = signed_distance(births, self.p1, self.p2)
        clear = np.abs(s) > BIRTH_MARGIN * self.band(first)
        for i, point, s_i, clear_i in zip(new, births.tolist(), s.tolist(), clear.tolist()):
            if clear_i:
                side = (s_i > 0) - (s_i < 0)
                armed[int(tracks.ids[i])] = side
                self._tracks[int(tracks.ids[i])] = _LineTrack(
                    point,
                    side,
                    side,
                    False,
                    -1,
                    timestamp,
                    timestamp,
                    int(tracks.class_ids[i]),
                    float(tracks.scores[i]),
                )
        return armed

    def _pass_params(self, states: list[_LineTrack | None], points: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Fraction along p1 -> p2 where each track's move from its previous anchor meets the
        line (meaningless for new tracks, which have no move), vectorised over tracks."""
        prev = np.array([points[i] if st is None else st.point for i, st in enumerate(states)]).reshape(-1, 2)
        s_prev = signed_distance(prev, self.p1, self.p2)
        return crossing_param(prev, points, s_prev, s, self.p1, self.p2)

    def _observe(self, st: _LineTrack, point: list[float], s: float, t: float, frame_index: int, ts: float) -> None:
        side = ((s > 0) - (s < 0)) or st.side  # exactly on the line: keep the previous side
        if side == st.armed:  # back on its armed side, even inside the band: an excursion cancels
            st.pending_since = None
        if side != st.side:
            st.passed = 0.0 <= t <= 1.0
            st.pass_frame, st.pass_ts = frame_index, ts
        st.side = side
        _move(st, point, ts)

    def _commit_clear(self, st: _LineTrack, tid: int, ts: float, events: list[CountEvent]) -> None:
        """The anchor is clearly on one side: back on its armed side cancels a pending crossing;
        on the other side, commit once it has been there for settle_s, then re-arm there."""
        if st.side != st.armed:
            if st.pending_since is None:
                st.pending_since = ts
            if ts - st.pending_since < self.settle_s - _EPS_S:
                return
            self._commit_pending(st, tid, events)
        st.armed = st.side
        st.passed = False
        st.pending_since = None

    def _commit_pending(self, st: _LineTrack, tid: int, events: list[CountEvent]) -> None:
        """Emit the crossing from the armed side to the current side if the line was passed."""
        if not st.passed or st.armed == 0 or st.side == st.armed:
            return
        st.passed = False
        st.armed = st.side
        name = self._class_name(st.class_id)
        if self.classes is not None and name not in self.classes:
            return
        direction = "in" if st.side > 0 else "out"
        events.append(CountEvent(self.name, "line", name, direction, tid, st.pass_frame, st.pass_ts, st.score))

    def _stitch(self, armed_now: list[int], timestamp: float) -> None:
        """Tracks armed for the first time in this update: is each the continuation, past the
        line, of a track lost just before it (edgetally/counting/stitch.py)?"""
        if self.stitch_gap_s <= 0:
            return
        for tid in armed_now:
            taken = {st.before for st in self._stitches.values()}
            found = find_predecessor(
                tid, self._tracks[tid], self._tracks, timestamp, self.stitch_gap_s, self.p1, self.p2, taken
            )
            if found is not None:
                before, crossed_at = found
                side = self._tracks[tid].side
                self._stitches[tid] = Stitch(before, tid, side, crossed_at, timestamp + self.stitch_lag_s)

    def _cancel_stitches(self, ids: list[int]) -> None:
        """A predecessor reported again was not lost: its stitch was wrong."""
        if self._stitches:
            seen = set(ids)
            for after in [a for a, st in self._stitches.items() if st.before in seen]:
                del self._stitches[after]

    def _commit_stitches(self, timestamp: float, events: list[CountEvent]) -> None:
        for after, stitch in list(self._stitches.items()):
            if stitch.due > timestamp + _EPS_S:
                continue
            del self._stitches[after]
            self._tracks.pop(stitch.before, None)  # the predecessor lives on as ``after``
            state = self._tracks.get(after)
            name = self._class_name(state.class_id) if state is not None else ""
            if state is None or (self.classes is not None and name not in self.classes):
                continue
            direction = "in" if stitch.side > 0 else "out"
            events.append(
                CountEvent(
                    self.name,
                    "line",
                    name,
                    direction,
                    after,
                    self._frame_at(stitch.crossed_at),
                    stitch.crossed_at,
                    state.score,
                )
            )

    def _frame_at(self, timestamp: float) -> int:
        """Index of the first frame seen at or after ``timestamp`` (the crossing's frame)."""
        for ts, index in self._frames:
            if ts >= timestamp - _EPS_S:
                return index
        return self._frames[-1][1] if self._frames else -1

    def _expire(self, timestamp: float, events: list[CountEvent]) -> None:
        """Forget tracks unseen for forget_after_s, committing a crossing they had passed."""
        stale = [tid for tid, st in self._tracks.items() if timestamp - st.last_seen > self.forget_after_s]
        for tid in stale:
            self._commit_pending(self._tracks[tid], tid, events)
            del self._tracks[tid]

    def _class_name(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)


def _move(st: _LineTrack, point: list[float], ts: float) -> None:
    """New anchor for a track; its velocity follows the move (EMA, time constant VELOCITY_TAU_S)."""
    dt = ts - st.last_seen
    if dt > 0:
        inst = [(point[0] - st.point[0]) / dt, (point[1] - st.point[1]) / dt]
        if st.velocity is None:
            st.velocity = inst
        else:
            a = 1.0 - math.exp(-dt / VELOCITY_TAU_S)
            st.velocity = [v + a * (i - v) for v, i in zip(st.velocity, inst)]
    st.point, st.last_seen = point, ts

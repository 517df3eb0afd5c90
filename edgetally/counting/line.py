"""Directed line counter with hysteresis. Pure geometry, numpy only.

Semantics (the contract the tests pin down):

- The line is the directed segment p1 -> p2. ``s(P) = (p2 - p1) x (P - p1) / |p2 - p1|`` is the
  signed distance of an anchor point P. ``in`` = s goes from negative to positive, ``out`` the
  reverse (image coordinates, y down).
- A move is the segment between a track's previous and current anchor. A move changes the
  track's side when s changes sign; it *passes the line* only if it meets the counting segment
  itself, not its infinite extension (so a fast object at low FPS that jumps across still counts,
  and an object walking around the end of the line does not).
- One crossing definition, shared with the tracking benchmark's truth
  (benchmarks/tracking/counting.py): the anchor is clearly on one side (|s| > band), then clearly
  on the other side for at least ``settle_s``, without being back on its first side in between
  (or the track ends / is forgotten on the far side). Defaults band = 0.1 x box height (at least
  ``hysteresis_px``), settle_s = 0.5 s: a person whose feet go a hand's width over the line and
  back within half a second has not crossed it; a person who walks over and stays, or walks
  over and leaves the view, has. Fed MOT17 ground-truth tracks, the counter with its defaults
  finds exactly the true crossings (0 % error at 30 and 15 fps, 2 % at 5 fps).
- Why 0.1 x height and a settle time rather than a wider band (0.2 x height, no settle, until
  2026-11): the wider band missed 18 of 184 true crossings even on perfect tracks (people who
  stop, turn or leave just past the line), while the settle time removes the same tracker
  jitter: a jittered box that pops over the line for a frame or two and back cancels instead of
  counting in + out. MOT17-derived detections, our tracker, abs error 30 / 15 / 5 fps:
  0.2 x h 27 / 20 / 28 %; 0.1 x h alone 46 / 36 / 28 %; 0.1 x h + settle 0.5 s 14 / 14 / 20 %
  (docs/benchmarks-tracking.md). Relative band: a detector's box edges jitter by a fraction of
  the box, so a fixed pixel band is too narrow for near objects and too wide for far ones.
  Height, not the box's extent across the line: it measures distance from the camera whatever
  the object's shape (a car seen side-on is twice as wide as tall).
- smoothing_s (default 0 = off): EMA of each track's anchor with this time constant. 0.2 s cut
  the benchmark error by a further 2-4 points at every frame rate, but lags fast objects (on
  traffic_road.mp4 it lost a car: out 15 vs 16) and costs 2 % on perfect tracks, so it is off.
- Every track has an *armed* side (where it was last clearly, |s| > band). A crossing is
  committed when the track has been clearly on the other side of its armed side for settle_s
  (its settle clock restarts whenever its anchor is back on the armed side's sign, even inside
  the band) and its last side change passed the line. Box flicker inside the band therefore never counts, however often s
  changes sign, and an object that stops on the line counts once, when it goes on.
- A new track's side comes from the detection that started it (``Tracks.first_xyxy``, one or
  two frames before the tracker confirms and reports it) when that was well clear of the line
  (BIRTH_MARGIN bands): at 4 fps a car moves 50-60 px between its first detection and its
  confirmation and may be confirmed already past the line; traffic_road.mp4 at 4 fps counted
  16 of 26 cars without this, 19 with it.
- A track first seen inside the band has no side until it is first clearly on one: leaving the
  band is not a crossing. A new id that appears on the line is most often an id switch or a box
  that blinked on mid-crossing; arming it on the sign of its in-band position counted such
  cases twice (the counter fed MOT17 ground-truth tracks, band = the benchmark truth's 0.1 x
  height, overcounted by 16 % with that rule, 6.5 % without it).
- Count once per crossing: after a commit the armed side flips, so the same track counts again
  only after it has clearly gone back (a real U-turn counts ``in`` then ``out``).
- Lines near the frame edge: an object leaving the frame may never get a band's width past a line
  drawn near the edge (its box is clipped, then it is gone). A track that passed the line and was
  last seen on the far side, inside the band, is committed when it is forgotten (unseen for
  forget_after_s) or when ``flush`` is called at the end of a stream.
- ID switch mid-crossing: a new id's only history is its first detection, which is already
  after the switch, so the switch itself is never a crossing; the new id is armed where it was
  first well clear. If the old id had passed the line it is committed when forgotten; otherwise
  the crossing is lost. A miss is preferred to a double count.
- Event time: ``frame_index`` / ``timestamp`` of an event are those of the update in which the
  anchor passed the line (the physical crossing), which can be a few frames before the update that
  emits the event.
- Per-track state is dropped ``forget_after_s`` after a track was last reported (bounded memory);
  set it >= the tracker's track_buffer_s so a re-found track keeps its history.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from edgetally.counting.geometry import anchor_points, crossing_param, signed_distance
from edgetally.counting.quiet import QuietTracks
from edgetally.structures import CountEvent, Tracks

_EPS_S = 1e-6  # timestamps like i / fps: 0.7 - 0.2 must count as 0.5 s
# A track's first detection (Tracks.first_xyxy) arms it only this many bands (0.3 x box height
# by default) from the line: it is one raw, unfiltered box, and a detector's box edges jitter by
# 5-10 % of the height, so nearer than that it says nothing about the side. 1 band: MOT17-derived
# counting 9.3 / 11.2 / 16.8 -> 10.7 / 12.5 / 16.7 % (people standing near a line armed on the
# wrong side by one jittered box); 3 bands: 9.6 / 11.3 / 16.7 %, and on traffic_road.mp4 at
# 4 / 6 / 8 fps it keeps the gain for fast cars (16 -> 19, 18 -> 19, 19 -> 19 of 26).
BIRTH_MARGIN = 3.0



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
    ) -> None:
        """labels: class names indexed by class id. classes: names to count (None = all).
        The dead band around the line is max(hysteresis_px, hysteresis x box height), per track
        and frame (see module docstring)."""
        self.name = name
        self.p1 = np.asarray(p1, dtype=np.float64).reshape(2)
        self.p2 = np.asarray(p2, dtype=np.float64).reshape(2)
        if np.allclose(self.p1, self.p2):
            raise ValueError(f"line {name!r}: p1 and p2 must differ, got {tuple(p1)} and {tuple(p2)}")
        if min(hysteresis_px, hysteresis, forget_after_s, settle_s, smoothing_s) < 0:
            raise ValueError(
                f"line {name!r}: hysteresis, hysteresis_px, forget_after_s, settle_s and smoothing_s must be >= 0"
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
        self._tracks: dict[int, _LineTrack] = {}
        self._quiet = QuietTracks(self.forget_after_s)

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

    def start_quiet(self, track_ids: Collection[int]) -> None:
        """Tracks alive before this counter existed (a reload that changed its geometry) are
        armed where they are next clearly seen, never from their birth box: no crossing that
        happened before the reload is counted by the new line."""
        self._quiet.add(track_ids)

    def update(self, tracks: Tracks, frame_index: int, timestamp: float) -> list[CountEvent]:
        """Feed the tracker's output for one frame; return the crossings committed now."""
        events: list[CountEvent] = []
        ids = tracks.ids.tolist()
        states = [self._tracks.get(tid) for tid in ids]
        points = self._smoothed(states, anchor_points(tracks.xyxy, self.anchor), timestamp)
        new = [i for i, st in enumerate(states) if st is None and not self._quiet.take(ids[i])]
        self._quiet.tick(timestamp)
        if new and tracks.first_xyxy is not None:
            self._arm_at_birth(tracks, new, timestamp)
            states = [self._tracks.get(tid) for tid in ids]
        s = signed_distance(points, self.p1, self.p2)
        t = self._pass_params(states, points, s).tolist()
        band = self.band(tracks.xyxy).tolist()
        # Python scalars from here: the per-track state machine is branchy, numpy scalars are slow.
        rows = zip(ids, states, points.tolist(), s.tolist(), t, band, tracks.class_ids.tolist(), tracks.scores.tolist())
        for tid, state, point, s_i, t_i, band_i, cid, score in rows:
            clear = abs(s_i) > band_i
            if state is None:
                side = ((s_i > 0) - (s_i < 0)) if clear else 0
                self._tracks[tid] = _LineTrack(point, side, side, False, -1, timestamp, timestamp, cid, score)
                continue
            state.class_id, state.score = cid, score
            if state.side == 0:  # never clearly on one side yet: arm where it first gets clear
                state.side = state.armed = ((s_i > 0) - (s_i < 0)) if clear else 0
                state.point, state.last_seen = point, timestamp
                continue
            self._observe(state, point, s_i, t_i, frame_index, timestamp)
            if clear:
                self._commit_clear(state, tid, timestamp, events)
        self._expire(timestamp, events)
        return events

    def flush(self) -> list[CountEvent]:
        """End of stream: commit every crossing that passed the line but never got clear of the
        band (e.g. the last frames of a file), then drop all state."""
        events: list[CountEvent] = []
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

    def _arm_at_birth(self, tracks: Tracks, new: list[int], timestamp: float) -> None:
        """New tracks (rows ``new``) whose first detection (``tracks.first_xyxy``) was more than
        BIRTH_MARGIN bands from the line start armed on its side, at its anchor, so the move from
        it to their first reported anchor is observed like any other move. A track is reported
        from its second matched detection on; at a low frame rate a fast object moves far in
        between and may be confirmed already past the line. Nearer first detections are left to
        the usual rule (no side until first clear)."""
        first = tracks.first_xyxy[new]  # type: ignore[index]
        births = anchor_points(first, self.anchor)
        s = signed_distance(births, self.p1, self.p2)
        clear = np.abs(s) > BIRTH_MARGIN * self.band(first)
        for i, point, s_i, clear_i in zip(new, births.tolist(), s.tolist(), clear.tolist()):
            if clear_i:
                side = (s_i > 0) - (s_i < 0)
                self._tracks[int(tracks.ids[i])] = _LineTrack(
                    point, side, side, False, -1, timestamp, timestamp, int(tracks.class_ids[i]), float(tracks.scores[i])
                )

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
        st.point = point
        st.last_seen = ts

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
        events.append(
            CountEvent(self.name, "line", name, direction, tid, st.pass_frame, st.pass_ts, st.score)
        )

    def _expire(self, timestamp: float, events: list[CountEvent]) -> None:
        """Forget tracks unseen for forget_after_s, committing a crossing they had passed."""
        stale = [tid for tid, st in self._tracks.items() if timestamp - st.last_seen > self.forget_after_s]
        for tid in stale:
            self._commit_pending(self._tracks[tid], tid, events)
            del self._tracks[tid]

    def _class_name(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)

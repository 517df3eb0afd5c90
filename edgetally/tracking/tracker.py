"""ByteTrack-class multi-object tracker in numpy, with every buffer expressed in seconds.

Per frame (``Tracker.update``), in named stages:

1. predict every track to the frame's timestamp (Kalman, real ``dt``: variable frame rates work);
2. drop a box overlapping a better one of another class (one vehicle as car and truck), then
   split detections into high-score (>= high_score) and low-score (>= low_score) sets;
3. associate confirmed tracks (tracked and lost) with high-score detections by IoU;
   3b. associate lost confirmed tracks still unmatched with the remaining high-score detections,
   their predicted boxes grown with the time they have been unseen;
   3c. slow detector only: fast-moving confirmed tracks still unmatched, seen at most one
   detection ago, on the Kalman-gated centre distance (boxes that moved more than their size
   no longer overlap);
4. associate confirmed tracks still unmatched that were *tracked* last frame with the
   low-score detections (ByteTrack's second stage: occluded / blurred objects keep their id);
5. associate tentative tracks with the remaining high-score detections (5b, slow detector
   only: confident ones on the centre distance, as 3c); 5c. tentative tracks still unmatched
   with the low-score detections stage 4 left (a weak detector's second look at an object);
6. mark misses; remember the boxes no track took (edgetally/tracking/trace.py: a tentative
   track confirmed later traces its first box back through them, along its own motion); start
   tentative tracks from the remaining detections >= new_track_score that are not a second box
   on an object already matched in this frame;
7. forget tracks: tentative ones unmatched for more than tentative_timeout_s, lost ones after
   track_buffer_s (removed tracks are dropped, not kept in a list: memory stays bounded). This
   also runs before matching, so a track past its buffer is never re-found, however long the
   gap between two frames.

Frames the detector did not see (``propagate``) move tracks by their measured motion (optical
flow, edgetally.motion) and change nothing else. Below slow_detect_fps detections per second a
tentative track survives one missed detection. A "slow detector" (that rate, with objects moving
slow_min_step of their size between detections) also starts tracks from lower scores, matches
jumps, and reports a new track's first box where the object was one detection before it (a line
counter arms the track there).

Track state is struct-of-arrays (one row per track) so every stage is vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgetally.postprocess.nms import cross_class_duplicates
from edgetally.structures import Detections, Tracks
from edgetally.tracking.assignment import iou_matrix, match, warm_up
from edgetally.tracking.kalman import (
    KalmanBoxFilter,
    KalmanNoise,
    cxcywh_to_xyxy,
    xyxy_to_cxcywh,
)
from edgetally.tracking.store import TrackStore
from edgetally.tracking.trace import TraceRules, UnclaimedBoxes


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker thresholds. Times are in SECONDS (frame-count buffers break at low FPS).

    One line per field says why; the measurements behind each default (traffic_road.mp4, the
    MOT15 / MOT17-derived tracking benchmark, the frame-rate benchmark) are in
    docs/benchmarks-tracking.md, "Why the tracker's defaults".
    """

    # Scores: nano detectors score clear cars 0.2-0.6, below ByteTrack's 0.5 / 0.6.
    high_score: float = 0.4  # first association; may start tracks
    low_score: float = 0.1  # [low, high): only keeps confirmed, tracked objects alive (ByteTrack stage 2)
    new_track_score: float = 0.5  # an unmatched detection starts a tentative track from this score
    # Association thresholds (IoU similarities).
    match_iou: float = 0.2  # stage 1, confirmed tracks x high detections (ByteTrack's 0.8 cost)
    low_match_iou: float = 0.5  # stage 2: low-score boxes are often false positives
    tentative_match_iou: float = 0.3  # stage 3, tentative tracks x leftover high detections
    tentative_expand: float = 0.3  # stage 3 compares boxes grown by this (a new track has no velocity)
    tentative_low_iou: float = 0.5  # stage 5c, tentative tracks x leftover low-score boxes (1 = off)
    min_hits: int = 2  # matched detections before a track is reported: evidence, not a time
    tentative_timeout_s: float = 0.25  # an unmatched tentative track lives this long (one missed frame)
    lost_expand_per_s: float = 0.5  # stage 1b: a lost track's box grows with the time it is unseen
    lost_expand_max: float = 0.2  # ... up to this fraction of its size per side (0 disables 1b)
    track_buffer_s: float = 2.0  # a lost track can be re-found this long; counters must remember longer
    class_aware: bool = False  # detectors flicker car/truck: match across classes, vote the class
    duplicate_iou: float = 0.7  # a leftover box this close to a track matched now starts nothing
    max_tracks: int = 1000  # safety net for a 24/7 device fed garbage
    height_iou: bool = True  # stages 1-2 score IoU x vertical overlap (Hybrid-SORT): depth matters
    # Between detections and on a slow detector (issue 13).
    flow_meas_weight: float = 0.02  # a box moved by optical flow: Kalman noise, fraction of its size
    cross_class_iou: float = 0.7  # one object boxed as two classes this close: keep the better (1 = off)
    slow_detect_fps: float = 10.0  # the rules below apply below this detection rate ...
    slow_min_step: float = 0.15  # ... if objects move this share of their size between detections
    slow_new_track_score: float = 0.25  # slow: fewer boxes before a line; from this score they start tracks
    slow_init_size_vel_factor: float = 2.0  # slow: a new track's size barely changes (two boxes differ by noise)
    tentative_timeout_detections: float = 2.5  # x detection interval (any slow rate): survives one miss
    jump_gate: float = 9.21  # slow: leftovers matched by Mahalanobis centre distance (chi2 99 %, 2 dof)
    jump_size_ratio: float = 1.5  # ... if their sizes differ by at most this factor
    jump_min_motion: float = 0.5  # ... for tracks moving this share of their size per detection interval
    jump_tentative_score: float = 0.3  # a tentative track's jump: both boxes at least this (= slow start)
    jump_max_unseen: float = 2.5  # ... for tracks unseen at most this many detection intervals (one miss)
    birth_back_date: bool = True  # slow: a new track's first box is moved back one detection interval ...
    birth_guard: float = 1.0  # ... unless a lost track is predicted within this many box heights of it
    # Any rate: a new track's first box traced back through the boxes no track claimed (tracking/trace.py).
    trace_s: float = 1.0  # how far back (0 disables)
    trace_tolerance: float = 0.3  # a link may miss the track's motion by this share of its size
    noise: KalmanNoise = field(default_factory=KalmanNoise)  # ByteTrack's process noise, 4x its measurement

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score:
            raise ValueError(f"need 0 <= low_score <= high_score, got {self.low_score}, {self.high_score}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if self.track_buffer_s < 0 or self.tentative_timeout_s < 0:
            raise ValueError("track_buffer_s and tentative_timeout_s must be >= 0")
        if self.trace_s < 0 or self.trace_tolerance < 0:
            raise ValueError(f"trace_s and trace_tolerance must be >= 0, got {self.trace_s}, {self.trace_tolerance}")
        if self.flow_meas_weight <= 0:
            raise ValueError(f"flow_meas_weight must be > 0, got {self.flow_meas_weight}")
        for name in ("match_iou", "low_match_iou", "tentative_match_iou", "tentative_low_iou"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")


class Tracker:
    """One instance per camera: ids start at 1 and belong to the instance."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._kf = KalmanBoxFilter(self.config.noise)
        self._store = TrackStore()
        self._next_id = 1
        self._last_timestamp: float | None = None
        self._interval: float | None = None  # smoothed time between detection updates, s
        self._last_update: float | None = None
        self._scene_step: float | None = None  # median motion between detections, in box sizes (smoothed)
        self._unclaimed = UnclaimedBoxes(
            TraceRules(
                self.config.trace_s, tolerance=self.config.trace_tolerance, size_ratio=self.config.jump_size_ratio
            )
        )
        warm_up()  # pick the assignment solver (imports scipy, ~0.4 s) now, not inside the first frame

    @property
    def num_tracks(self) -> int:
        """Every stored track (tentative, tracked and lost): what bounded-memory tests watch."""
        return len(self._store)

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        """Feed one frame (possibly with no detections); return confirmed tracks matched now."""
        self._measure_interval(timestamp)
        self._predict(timestamp)
        self._forget(timestamp)  # before matching: a track past its buffer must not be re-found
        st = self._store
        st.matched[:] = False
        high, low = self._split(detections)
        slow = self._slow()
        rest_high = self._associate(high, st.confirmed, self.config.match_iou)
        if self.config.lost_expand_per_s > 0:
            rest_high = self._associate_lost(rest_high, timestamp)
        if slow:
            rest_high = self._associate_jump(rest_high, st.confirmed, True)
        was_tracked = st.confirmed & ~st.matched & ~st.lost
        rest_low = self._associate(low, was_tracked, self.config.low_match_iou)
        rest_high = self._associate(
            rest_high, ~st.confirmed, self.config.tentative_match_iou, self.config.tentative_expand
        )
        if slow:
            rest_high = self._associate_jump(rest_high, ~st.confirmed, False)
        rest_low = self._associate_tentative_low(rest_low)
        self._learn_scene_motion()
        self._mark_missed(timestamp)
        self._keep_unclaimed(rest_high, rest_low, timestamp)
        self._spawn(rest_high, timestamp)
        self._forget(timestamp)
        return self._output()

    def motion_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Ids (N,) int64 and current boxes (N, 4) float32 of the tracks that motion between
        detections should carry: every track matched at the last detection, tentative ones
        included (a new track has no velocity yet; flow gives it one). Lost tracks are left to
        their Kalman prediction: nothing in the image says where they are."""
        st = self._store
        keep = ~st.lost
        return st.ids[keep].copy(), cxcywh_to_xyxy(st.mean[keep]).astype(np.float32)

    def propagate(self, ids: np.ndarray, xyxy: np.ndarray, timestamp: float) -> Tracks:
        """A frame the detector did not see: tracks ``ids`` were measured at ``xyxy`` (N, 4) by
        motion (optical flow), a Kalman update with flow_meas_weight; every other track keeps its
        prediction. Nothing is matched, missed, confirmed or forgotten on a frame no detector
        looked at. Returns the tracks a detection update would report (confirmed, not lost),
        at their new positions, so counters see every camera frame."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        if boxes.shape[0] != ids.shape[0]:
            raise ValueError(f"propagate: {ids.shape[0]} ids but {boxes.shape[0]} boxes")
        self._predict(timestamp)
        st = self._store
        rows = np.searchsorted(st.ids, ids)  # ids are stored in ascending order (appended, never reordered)
        if rows.size and (rows.max() >= len(st) or (st.ids[rows] != ids).any()):
            raise ValueError(f"propagate: unknown track ids {sorted(set(ids.tolist()) - set(st.ids.tolist()))}")
        if rows.size:
            st.mean[rows], st.cov[rows] = self._kf.update(
                st.mean[rows], st.cov[rows], xyxy_to_cxcywh(boxes), self.config.flow_meas_weight
            )
        return self._output()

    # -- stages -----------------------------------------------------------------------------

    def _predict(self, timestamp: float) -> None:
        """Advance all tracks to ``timestamp``; a timestamp going backwards is treated as dt=0."""
        dt = 0.0 if self._last_timestamp is None else max(0.0, timestamp - self._last_timestamp)
        self._last_timestamp = timestamp if self._last_timestamp is None else max(self._last_timestamp, timestamp)
        st = self._store
        if len(st) == 0 or dt == 0.0:
            return
        # A lost track keeps drifting with its last velocity, but its size stops changing:
        # extrapolating a shrink over a second would make the box vanish (ByteTrack does the same).
        st.mean[st.lost, 6:8] = 0.0
        st.mean, st.cov = self._kf.predict(st.mean, st.cov, dt)

    def _measure_interval(self, timestamp: float) -> None:
        """Smoothed time between detection updates: how slow the detector is (propagated frames
        in between do not count)."""
        last, self._last_update = self._last_update, timestamp
        if last is None or timestamp <= last:
            return
        dt = timestamp - last
        self._interval = dt if self._interval is None else self._interval + 0.2 * (dt - self._interval)

    def _slow(self) -> bool:
        """A slow detector for these objects: few detections per second, and between two of them
        objects move far enough (slow_min_step of their size) that IoU association, a start
        from confident boxes only and one-frame tentative timeouts lose them. People filmed at
        7 fps (MOT15 PETS09) move a tenth of their size and keep the full-rate rules; cars at
        5 per second (traffic_road.mp4) move a third."""
        return self._slow_rate() and (self._scene_step or 0.0) >= self.config.slow_min_step

    def _slow_rate(self) -> bool:
        return self._interval is not None and self._interval * self.config.slow_detect_fps > 1.0 + 1e-9

    def _learn_scene_motion(self) -> None:
        """Median step (``_steps``) of the confirmed tracks matched in this update, smoothed over
        about 20 detections: a property of the scene and the rate, not of one frame."""
        rows = np.nonzero(self._store.confirmed & self._store.matched)[0]
        if rows.size and self._slow_rate():
            step = float(np.median(self._steps(rows)))
            self._scene_step = step if self._scene_step is None else self._scene_step + 0.05 * (step - self._scene_step)

    def _split(self, detections: Detections) -> tuple[Detections, Detections]:
        if self.config.cross_class_iou < 1.0 and len(detections) > 1:
            detections = detections.select(
                cross_class_duplicates(
                    detections.xyxy, detections.scores, detections.class_ids, self.config.cross_class_iou
                )
            )
        scores = detections.scores
        high_score = self.config.high_score
        if self._slow():  # a slow detector's few boxes of an approaching object all count
            high_score = min(high_score, self.config.slow_new_track_score)
        high = scores >= high_score
        low = (scores >= self.config.low_score) & ~high
        return detections.select(high), detections.select(low)

    def _associate(self, dets: Detections, candidates: np.ndarray, min_iou: float, expand: float = 0.0) -> Detections:
        """Match tracks selected by the boolean mask ``candidates`` to ``dets``; update the matched
        tracks in place; return the detections left unmatched. ``expand`` > 0 compares boxes
        grown by that fraction of their size on every side (buffered IoU, C-BIoU)."""
        st = self._store
        track_idx = np.nonzero(candidates & ~st.matched)[0]
        if track_idx.size == 0 or len(dets) == 0:
            return dets
        predicted = _grow(cxcywh_to_xyxy(st.mean[track_idx]), expand)
        # Grown boxes (tentative stage) are a looser test on purpose: no height modulation there.
        sim = iou_matrix(predicted, _grow(dets.xyxy, expand), self.config.height_iou and expand == 0.0)
        if self.config.class_aware:
            sim = np.where(st.class_ids[track_idx, None] == dets.class_ids[None, :], sim, 0.0)
        rows, cols, _, un_cols = match(sim, min_iou)
        if rows.size:
            self._apply_matches(track_idx[rows], dets.select(cols))
        return dets.select(un_cols)

    def _associate_tentative_low(self, low: Detections) -> Detections:
        """Stage 5c: a tentative track takes a low-score box as its second look. A weak detector
        (a nano model, INT8) scores a clear car 0.2-0.6 from frame to frame: a track started by its
        one box >= new_track_score died unconfirmed when the next box scored under high_score, and
        the car was never counted. Plain IoU >= tentative_low_iou (what stage 4 asks of
        confirmed tracks, low_match_iou); at a slow detection rate, where the object moved far and a new track has
        no velocity, stage 3's grown boxes and threshold."""
        cfg = self.config
        if cfg.tentative_low_iou >= 1.0:
            return low
        if self._slow_rate():
            return self._associate(low, ~self._store.confirmed, cfg.tentative_match_iou, cfg.tentative_expand)
        return self._associate(low, ~self._store.confirmed, cfg.tentative_low_iou)

    def _associate_lost(self, dets: Detections, timestamp: float) -> Detections:
        """Stage 1b: lost confirmed tracks still unmatched x high detections still unmatched, the
        track's predicted box grown with the time it has been unseen (its position uncertainty
        grows with the gap; the IoU threshold stays match_iou). Only leftovers of stage 1 take
        part, so a tracked object's detection is never taken by a lost neighbour."""
        st = self._store
        track_idx = np.nonzero(st.confirmed & st.lost & ~st.matched)[0]
        if track_idx.size == 0 or len(dets) == 0:
            return dets
        unseen = timestamp - st.last_seen[track_idx]
        grow = np.minimum(self.config.lost_expand_per_s * unseen, self.config.lost_expand_max)
        sim = iou_matrix(_grow(cxcywh_to_xyxy(st.mean[track_idx]), grow[:, None]), dets.xyxy)
        if self.config.class_aware:
            sim = np.where(st.class_ids[track_idx, None] == dets.class_ids[None, :], sim, 0.0)
        rows, cols, _, un_cols = match(sim, self.config.match_iou)
        if rows.size:
            self._apply_matches(track_idx[rows], dets.select(cols))
        return dets.select(un_cols)

    def _associate_jump(self, dets: Detections, candidates: np.ndarray, moving_only: bool) -> Detections:
        """Slow detector only, after the IoU stages: tracks and high detections still unmatched,
        whose boxes need not overlap, matched on the centre's distance from the Kalman prediction
        in units of its uncertainty (Mahalanobis: it grows with the time since the last
        detection and with how little the track's velocity is known, so a new track gets a wide
        gate and a steady one a narrow one), gated at jump_gate (chi2, 2 dof) and by a
        box-size ratio of at most jump_size_ratio (an object's size changes little in a
        fraction of a second). ``moving_only``: confirmed tracks take part only if they move
        jump_min_motion of their size between detections (slower ones overlap their next box,
        and a gap there is a miss, not a jump); tentative ones only with two boxes of at least
        jump_tentative_score (by default any box that may start a track: see
        docs/benchmarks-frame-rates.md). Without the motion rule, people at 5 per second on the
        MOT17-derived benchmark were linked to neighbours and false positives."""
        st, cfg = self._store, self.config
        idx = np.nonzero(candidates & ~st.matched)[0]
        # A track unseen for longer has a gate wide enough to take an object entering anywhere
        # (a car gone at the left edge took one entering at the right, going the other way).
        unseen = self._last_update - st.last_seen[idx]  # type: ignore[operator]
        idx = idx[unseen <= cfg.jump_max_unseen * self._interval + 1e-9]  # type: ignore[operator]
        if moving_only:  # confirmed: only tracks that themselves move far between detections
            idx = idx[self._steps(idx) >= cfg.jump_min_motion]
        else:  # tentative: a link on position alone (no overlap, no velocity) needs confident boxes
            idx = idx[st.scores[idx] >= cfg.jump_tentative_score]
        if idx.size == 0 or len(dets) == 0 or cfg.jump_gate <= 0:
            return dets
        mean, cov = st.mean[idx], st.cov[idx]
        det = xyxy_to_cxcywh(dets.xyxy)
        s = cov[:, :2, :2] + np.eye(2) * (cfg.noise.meas_weight * mean[:, None, 2:4]) ** 2
        d = det[None, :, :2] - mean[:, None, :2]  # (tracks, dets, 2)
        m2 = np.einsum("tdi,tij,tdj->td", d, np.linalg.inv(s), d)
        ratio = det[None, :, 2:4] / np.maximum(mean[:, None, 2:4], 1.0)
        r = cfg.jump_size_ratio
        valid = (m2 <= cfg.jump_gate) & np.all((ratio <= r) & (ratio >= 1.0 / r), axis=2)
        if not moving_only:
            valid &= dets.scores[None, :] >= cfg.jump_tentative_score
        if self.config.class_aware:
            valid &= st.class_ids[idx, None] == dets.class_ids[None, :]
        sim = np.where(valid, 1.0 - m2 / (2.0 * self.config.jump_gate), 0.0)  # in (0.5, 1] when valid
        rows, cols, _, un_cols = match(sim, 0.5)
        if rows.size:
            self._apply_matches(idx[rows], dets.select(cols))
        return dets.select(un_cols)

    def _back_date_births(self, idx: np.ndarray, dets: Detections) -> None:
        """Slow detector, tracks ``idx`` about to take their second detection ``dets`` (not yet
        confirmed, so no counter has seen them): their first box (``Tracks.first_xyxy``, where a
        line counter arms a new track) becomes where the object was at the detection before
        it, extrapolated back one detection interval at the velocity of its first two boxes.
        The detector missed it there; at 5 per second a car moves a third of its length per
        interval, and one first seen just past a line was before it at the previous detection,
        a crossing otherwise lost. Not when a lost confirmed track was predicted within
        birth_guard box heights of the first box when it was detected: the new id is then
        likely that track's (an id switch, which may have been counted already)."""
        st = self._store
        keep = (st.hits[idx] == 1) & ~st.confirmed[idx]
        if not keep.any() or self._interval is None or self._last_update is None:
            return
        rows = idx[keep]
        first = st.first_box[rows].astype(np.float64)
        first_c = xyxy_to_cxcywh(first)
        span = np.maximum(self._last_update - st.last_seen[rows], 1e-6)  # birth -> now
        shift = (xyxy_to_cxcywh(dets.xyxy[keep])[:, 0:2] - first_c[:, 0:2]) * (self._interval / span)[:, None]
        back = first - np.concatenate([shift, shift], axis=1)
        lost = np.nonzero(st.confirmed & st.lost & ~st.matched)[0]
        if lost.size:  # where each lost track was predicted when each new one was born
            at_birth = st.mean[lost, None, 0:2] - st.mean[lost, None, 4:6] * span[None, :, None]
            dist = np.linalg.norm(at_birth - first_c[None, :, 0:2], axis=2)  # (lost, rows)
            clear = ~(dist <= self.config.birth_guard * first_c[None, :, 3]).any(axis=0)
            rows, back = rows[clear], back[clear]
        st.first_box[rows] = back.astype(np.float32)

    def _keep_unclaimed(self, rest_high: Detections, rest_low: Detections, timestamp: float) -> None:
        """Remember this update's boxes no track took (those about to start tentative tracks too:
        such a track may die unconfirmed), for tracing later births back (tracking/trace.py)."""
        if self.config.trace_s <= 0:
            return
        boxes = np.concatenate([rest_high.xyxy, rest_low.xyxy]).reshape(-1, 4)
        claimed = cxcywh_to_xyxy(self._store.mean[self._store.matched])
        self._unclaimed.add(timestamp, boxes, claimed, self.config.duplicate_iou)

    def _trace_births(self, idx: np.ndarray, dets: Detections) -> np.ndarray:
        """Tracks ``idx`` about to take their second detection ``dets`` (not yet confirmed: no
        counter has seen them): their first box becomes the earliest unclaimed box on their path,
        where there is one (tracking/trace.py). -> which of ``idx`` were traced."""
        st = self._store
        traced = np.zeros(idx.shape[0], bool)
        if self.config.trace_s <= 0 or not len(self._unclaimed) or self._last_update is None:
            return traced
        for k in np.nonzero((st.hits[idx] == 1) & ~st.confirmed[idx])[0]:
            row = idx[k]  # one track at birth: last_seen is still its first detection's time
            box = self._unclaimed.trace(st.first_box[row], st.last_seen[row], dets.xyxy[k], self._last_update)
            if box is not None:
                st.first_box[row] = box.astype(np.float32)
                traced[k] = True
        return traced

    def _steps(self, idx: np.ndarray) -> np.ndarray:
        """How far tracks ``idx`` move between two detections, in box sizes (Kalman velocity)."""
        step = self._store.mean[idx, 4:6] * (self._interval or 0.0) / np.maximum(self._store.mean[idx, 2:4], 1.0)
        return np.hypot(step[:, 0], step[:, 1])

    def _apply_matches(self, idx: np.ndarray, dets: Detections) -> None:
        st = self._store
        traced = self._trace_births(idx, dets)
        if self.config.birth_back_date and self._slow() and not traced.all():
            self._back_date_births(idx[~traced], dets.select(~traced))
        st.mean[idx], st.cov[idx] = self._kf.update(st.mean[idx], st.cov[idx], xyxy_to_cxcywh(dets.xyxy))
        st.matched[idx] = True
        st.hits[idx] += 1
        st.scores[idx] = dets.scores
        st.vote_class(idx, dets.class_ids)
        st.confirmed[idx] |= st.hits[idx] >= self.config.min_hits

    def _mark_missed(self, timestamp: float) -> None:
        """Matched tracks are seen now; unmatched ones are lost (until re-found or forgotten)."""
        st = self._store
        st.last_seen[st.matched] = timestamp
        st.lost = ~st.matched

    def _spawn(self, dets: Detections, timestamp: float) -> None:
        start = self.config.slow_new_track_score if self._slow() else self.config.new_track_score
        dets = dets.select(dets.scores >= start)
        dets = self._drop_duplicates(dets)
        room = max(0, self.config.max_tracks - len(self._store))
        if len(dets) == 0 or room == 0:
            return
        dets = dets.select(np.argsort(-dets.scores, kind="stable")[:room])
        n = len(dets)
        size_vel = self.config.slow_init_size_vel_factor if self._slow() else None
        mean, cov = self._kf.initiate(xyxy_to_cxcywh(dets.xyxy), size_vel)
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        self._store.append(ids, mean, cov, dets.scores, dets.class_ids, timestamp, dets.xyxy)
        self._store.confirmed[-n:] = self.config.min_hits <= 1
        self._store.matched[-n:] = True

    def _drop_duplicates(self, dets: Detections) -> Detections:
        st = self._store
        if len(dets) == 0 or not st.matched.any() or self.config.duplicate_iou >= 1.0:
            return dets
        overlap = iou_matrix(dets.xyxy, cxcywh_to_xyxy(st.mean[st.matched])).max(axis=1)
        return dets.select(overlap < self.config.duplicate_iou)

    def _forget(self, timestamp: float) -> None:
        st = self._store
        unseen_for = timestamp - st.last_seen
        timeout = self.config.tentative_timeout_s
        # Never shorter than one missed detection of a slow detector, however fast its objects
        # move: a miss at 5 per second is 0.2 s without a look (people at 3-5 fps: about 0.5 point).
        if self._slow_rate():
            timeout = max(timeout, self.config.tentative_timeout_detections * self._interval)  # type: ignore[operator]
        drop_tentative = ~st.confirmed & st.lost & (unseen_for > timeout)
        drop_lost = st.confirmed & (unseen_for > self.config.track_buffer_s)
        st.remove(drop_tentative | drop_lost)

    def _output(self) -> Tracks:
        st = self._store
        keep = st.confirmed & st.matched
        return Tracks(
            ids=st.ids[keep].copy(),
            xyxy=cxcywh_to_xyxy(st.mean[keep]).astype(np.float32),
            scores=st.scores[keep].copy(),
            class_ids=st.class_ids[keep].copy(),
            first_xyxy=st.first_box[keep],
        )


def _grow(xyxy: np.ndarray, fraction: float | np.ndarray) -> np.ndarray:
    """Boxes grown by ``fraction`` (a scalar, or one (N, 1) row per box) of their width/height
    on each side."""
    if isinstance(fraction, float) and fraction <= 0.0:  # the common case, without numpy calls
        return xyxy
    if np.all(np.asarray(fraction) <= 0):
        return xyxy
    b = np.asarray(xyxy, dtype=np.float64)
    pad = np.concatenate([b[:, 2:4] - b[:, 0:2]] * 2, axis=1) * fraction
    return b + pad * np.array([-1.0, -1.0, 1.0, 1.0])

"""ByteTrack-class multi-object tracker in numpy, with every buffer expressed in seconds.

Per frame (``Tracker.update``), in named stages:

1. predict every track to the frame's timestamp (Kalman, real ``dt``: variable frame rates work);
2. split detections into high-score (>= high_score) and low-score (>= low_score) sets;
3. associate confirmed tracks (tracked and lost) with high-score detections by IoU;
   3b. associate lost confirmed tracks still unmatched with the remaining high-score detections,
   their predicted boxes grown with the time they have been unseen;
4. associate confirmed tracks still unmatched that were *tracked* last frame with the
   low-score detections (ByteTrack's second stage: occluded / blurred objects keep their id);
5. associate tentative tracks with the remaining high-score detections;
6. mark misses; start tentative tracks from the remaining detections >= new_track_score that
   are not a second box on an object already matched in this frame;
7. forget tracks: tentative ones unmatched for more than tentative_timeout_s, lost ones after
   track_buffer_s (removed tracks are dropped, not kept in a list: memory stays bounded). This
   also runs before matching, so a track past its buffer is never re-found, however long the
   gap between two frames.

Track state is struct-of-arrays (one row per track) so every stage is vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetally.postprocess.nms import cross_class_duplicates
from edgetally.structures import Detections, Tracks
from edgetally.tracking.assignment import iou_matrix, match, warm_up
from edgetally.tracking.kalman import KalmanBoxFilter, KalmanNoise, cxcywh_to_xyxy, xyxy_to_cxcywh
from edgetally.tracking.store import TrackStore


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker thresholds. Times are in SECONDS (frame-count buffers break at low FPS).

    high_score: detections at or above this score take part in the first association and may
        start tracks. ByteTrack uses 0.5 with a large MOT17-trained detector; the nano-sized
        detectors an edge board runs score real objects lower (YOLOX-nano gives 0.2-0.6 to
        clearly visible cars in traffic_road.mp4), so the default is 0.4.
    low_score: detections in [low_score, high_score) are only used to keep already confirmed,
        currently tracked objects alive (ByteTrack's second stage, 0.1).
    new_track_score: an unmatched detection starts a tentative track only at or above this score
        (ByteTrack det_thresh = track_thresh + 0.1, kept). On traffic_road.mp4 (YOLOX-nano, line
        x=320, hand count 26) counts are 25/26 with no false count for high_score 0.3-0.4 x
        new_track_score 0.4-0.5 x match_iou 0.1-0.2, and drop to 19/26 with ByteTrack's 0.5/0.6:
        late track starts, not false tracks, were the losses. Defaults sit mid-plateau.
    match_iou: minimum IoU for stage 1 (confirmed tracks x high detections). 0.2 = ByteTrack's
        match_thresh 0.8 expressed as a similarity. Kept after the tracking benchmark
        (docs/benchmarks-tracking.md): 0.3 gains on MOT17-derived detections at 30 fps (HOTA
        +1.5, counting error 27 -> 16 %) but loses on real ACF detections (MOT15 HOTA 36.3 ->
        34.0, IDF1 -4.2) and undercounts at 5 fps (net -9 -> -23 %): the gain is specific to
        the synthetic noise, the loss is on a real detector.
    low_match_iou: minimum IoU for stage 2 (low-score detections); stricter because low-score
        boxes are often false positives (ByteTrack 0.5).
    tentative_match_iou: minimum IoU for stage 3 (tentative tracks x remaining high detections),
        ByteTrack 0.3.
    tentative_expand: in stage 3 boxes are compared grown by this fraction of their size on each
        side (buffered IoU, as in C-BIoU). A tentative track has no velocity estimate yet, so at
        low frame rates its next detection may barely overlap it; only leftover detections
        reach this stage, so the looser test rarely steals a box. traffic_road.mp4 subsampled
        to 4 fps: 13/26 crossings with 0.3 vs 9/26 with 0; unchanged at 24 fps.
    min_hits: matched detections needed before a track is confirmed and reported. 2 = ByteTrack
        (a one-frame false positive is never reported). A count, not a time, on purpose: it is
        evidence that the object is real, which does not depend on the frame rate. 3 (SORT's
        paper) costs 3 HOTA points at 5 fps on MOT17-derived detections for +0.5 elsewhere.
    tentative_timeout_s: a tentative track unmatched for longer than this is removed (0 = at its
        first miss, like ByteTrack). 0.25 s lets a new track survive one missed detection at
        5 fps (a few at 25 fps): nano detectors often miss an object for a frame just as it
        appears. traffic_road.mp4 at 12 fps: 25/26 crossings with 0.25 s vs 23/26 with 0;
        unchanged at 24 fps, no false count.
    lost_expand_per_s, lost_expand_max: stage 1b (after stage 1): lost confirmed tracks still
        unmatched are compared with the leftover high-score detections using their predicted box
        grown by min(lost_expand_per_s x seconds unseen, lost_expand_max) of its size on each side
        (the IoU threshold stays match_iou): the longer a track is unseen, the less its constant-
        velocity prediction is worth. MOT17-derived counting (docs/benchmarks-tracking.md), abs
        error at 30 / 15 / 5 fps with the default counter: 14.4 / 13.9 / 19.6 % without it,
        10.8 / 14.4 / 18.6 % with it (15 fps: one crossing worse); MOT15 ACF HOTA +1.4, IDF1
        +3.0; MOT15 Faster R-CNN HOTA -0.3, IDF1 -0.7; MOT17 HOTA +0.4 / -0.2 / -0.1;
        traffic_road.mp4 unchanged (9 / 16). A cap of 0.3-0.5 lost more at 15 fps (ids taken
        by a neighbour). 0 disables.
    track_buffer_s: a lost confirmed track is kept (and can be re-found with the same id) for
        this long after its last match, then forgotten. ByteTrack: 30 frames at 30 fps = 1 s.
        2 s: on MOT17-02/04/09 ground truth turned into noisy detections (10 % dropped, 3 %
        jitter), at 30 and 10 fps, it cut id switches by 17 % and raised coverage vs 1 s; the
        traffic_road.mp4 count is unchanged. Counters must keep track state at least this long.
        Rechecked on the full tracking benchmark: 1 s loses 1.3 HOTA on MOT15 ACF and at 5 fps
        (counting net -9 -> -22 % at 5 fps); 3 s changes nothing measurable.
    class_aware: only match tracks and detections of the same class. Off by default: detectors
        flicker between close classes (car/truck), which would break tracks; the reported class
        is the track's majority class instead.
    duplicate_iou: an unmatched detection overlapping a track matched in this frame by at least
        this IoU does not start a new track: it is a second box on the same object (class-wise NMS
        keeps a "car" and a "truck" box on one vehicle), which would otherwise become a duplicate
        track and a double count. 1.0 disables.
    max_tracks: hard cap on stored tracks (a safety net for a 24/7 device fed garbage); no new
        track starts while the cap is reached.
    height_iou: stages 1 and 2 score a track/detection pair by IoU x the overlap of their
        vertical extents (Hybrid-SORT's height-modulated IoU), thresholded at match_iou /
        low_match_iou. In a crowd the wrong person is usually one standing in front of or
        behind the right one: a big overlap in the image, but a different box height and foot
        line. Tracking benchmark (docs/benchmarks-tracking.md), off -> on: MOT15 Faster R-CNN
        HOTA 35.2 -> 36.1, IDF1 45.0 -> 46.1; MOT15 ACF HOTA 37.7 -> 37.3; MOT17-derived id
        switches 362 / 282 / 240 -> 290 / 258 / 176 at 30 / 15 / 5 fps; counting abs error
        10.8 / 14.4 / 18.6 -> 11.9 / 12.9 / 11.9 %. traffic_road.mp4 at 24, 12 and 4 fps:
        identical counts. Also tried and not taken: the same factor on the lost-track stage
        (1b): ACF HOTA -1.7 and 5 fps counting 18 %; on stage 1 only: counting 13.9 % at 30 fps;
        IoU gating with the product only as the cost: no gain.
    noise: Kalman noise weights (``KalmanNoise``: ByteTrack's process noise, 4x its measurement
        noise, with the evidence).
    """

    high_score: float = 0.4
    low_score: float = 0.1
    new_track_score: float = 0.5
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    tentative_match_iou: float = 0.3
    tentative_expand: float = 0.3
    min_hits: int = 2
    tentative_timeout_s: float = 0.25
    lost_expand_per_s: float = 0.5
    lost_expand_max: float = 0.2
    track_buffer_s: float = 2.0
    class_aware: bool = False
    duplicate_iou: float = 0.7
    max_tracks: int = 1000
    height_iou: bool = True
    flow_meas_weight: float = 0.1
    cross_class_iou: float = 0.7
    slow_detect_fps: float = 10.0
    slow_new_track_score: float = 0.3
    tentative_timeout_detections: float = 1.5
    noise: KalmanNoise = KalmanNoise()

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score:
            raise ValueError(f"need 0 <= low_score <= high_score, got {self.low_score}, {self.high_score}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if self.track_buffer_s < 0 or self.tentative_timeout_s < 0:
            raise ValueError("track_buffer_s and tentative_timeout_s must be >= 0")
        if self.flow_meas_weight <= 0:
            raise ValueError(f"flow_meas_weight must be > 0, got {self.flow_meas_weight}")
        for name in ("match_iou", "low_match_iou", "tentative_match_iou"):
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
        rest_high = self._associate(high, st.confirmed, self.config.match_iou)
        if self.config.lost_expand_per_s > 0:
            rest_high = self._associate_lost(rest_high, timestamp)
        was_tracked = st.confirmed & ~st.matched & ~st.lost
        self._associate(low, was_tracked, self.config.low_match_iou)
        rest_high = self._associate(
            rest_high, ~st.confirmed, self.config.tentative_match_iou, self.config.tentative_expand
        )
        self._mark_missed(timestamp)
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
        return self._interval is not None and self._interval * self.config.slow_detect_fps > 1.0 + 1e-9

    def _split(self, detections: Detections) -> tuple[Detections, Detections]:
        if self.config.cross_class_iou < 1.0 and len(detections) > 1:
            detections = detections.select(cross_class_duplicates(
                detections.xyxy, detections.scores, detections.class_ids, self.config.cross_class_iou))
        scores = detections.scores
        high = scores >= self.config.high_score
        low = (scores >= self.config.low_score) & ~high
        return detections.select(high), detections.select(low)

    def _associate(
        self, dets: Detections, candidates: np.ndarray, min_iou: float, expand: float = 0.0
    ) -> Detections:
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
        rows, cols, _, un_cols = match(sim, self.config.match_iou)
        if rows.size:
            self._apply_matches(track_idx[rows], dets.select(cols))
        return dets.select(un_cols)

    def _apply_matches(self, idx: np.ndarray, dets: Detections) -> None:
        st = self._store
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
        mean, cov = self._kf.initiate(xyxy_to_cxcywh(dets.xyxy))
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
        if self._interval is not None:  # never shorter than one missed detection of a slow detector
            timeout = max(timeout, self.config.tentative_timeout_detections * self._interval)
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

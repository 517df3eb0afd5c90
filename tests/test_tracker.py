"""Tracker, Kalman filter and assignment on synthetic detections with known ground truth."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgetally.structures import Detections
from edgetally.tracking import KalmanBoxFilter, Tracker, TrackerConfig
from edgetally.tracking.assignment import hungarian, iou_matrix, match


def dets(boxes: list[list[float]], scores: list[float] | None = None, classes: list[int] | None = None) -> Detections:
    n = len(boxes)
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores if scores is not None else [0.9] * n, np.float32),
        np.array(classes if classes is not None else [2] * n, np.int64),
    )


def box_at(x: float, y: float = 100.0, w: float = 40.0, h: float = 30.0) -> list[float]:
    return [x, y, x + w, y + h]


def run(tracker: Tracker, frames: list[Detections], fps: float) -> list[list[int]]:
    return [tracker.update(d, i / fps).ids.tolist() for i, d in enumerate(frames)]


# -- assignment ------------------------------------------------------------------------------


def test_hungarian_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        cost = rng.random((n, m))
        rows, cols = hungarian(cost)
        k = min(n, m)
        if n <= m:
            best = min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
        else:
            best = min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))
        assert len(rows) == k and len(set(rows.tolist())) == k and len(set(cols.tolist())) == k
        assert cost[rows, cols].sum() == pytest.approx(best)


@pytest.mark.parametrize(
    "sim,threshold,pairs",
    [
        ([[0.9, 0.0], [0.0, 0.8]], 0.5, [(0, 0), (1, 1)]),
        ([[0.9, 0.0], [0.0, 0.3]], 0.5, [(0, 0)]),
        # Greedy would take (0,0)=0.6 and leave row 1 unmatched; optimal keeps both.
        ([[0.6, 0.5], [0.55, 0.0]], 0.3, [(0, 1), (1, 0)]),
        ([[0.2, 0.1]], 0.3, []),
        (np.zeros((0, 3)), 0.3, []),
    ],
)
def test_match_is_thresholded_and_optimal(sim, threshold, pairs) -> None:
    rows, cols, un_r, un_c = match(
        np.array(sim, dtype=float).reshape(len(sim), -1) if len(sim) else np.zeros((0, 3)), threshold
    )
    assert sorted(zip(rows.tolist(), cols.tolist())) == pairs
    n, m = np.asarray(sim).reshape(len(sim), -1).shape if len(sim) else (0, 3)
    assert sorted(un_r.tolist() + rows.tolist()) == list(range(n))
    assert sorted(un_c.tolist() + cols.tolist()) == list(range(m))


def test_iou_matrix() -> None:
    iou = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    assert iou.tolist() == [[1.0, pytest.approx(1 / 3), 0.0]]


@pytest.mark.parametrize(
    ("other", "iou", "height_overlap"),
    [
        ([0, 0, 10, 10], 1.0, 1.0),  # identical
        ([5, 0, 15, 10], 1 / 3, 1.0),  # only x differs: no extra penalty
        ([0, 5, 10, 15], 1 / 3, 1 / 3),  # vertical overlap 5 of a 15 px span
        ([0, 10, 10, 20], 0.0, 0.0),  # touching
        ([2, 2, 8, 7], 0.3, 0.5),  # a smaller box inside: 30 of 100 px^2; 5 of 10 px tall
    ],
)
def test_height_modulated_iou(other: list[float], iou: float, height_overlap: float) -> None:
    a, b = np.array([[0, 0, 10, 10]]), np.array([other])
    assert iou_matrix(a, b).item() == pytest.approx(iou)
    assert iou_matrix(a, b, height_modulated=True).item() == pytest.approx(iou * height_overlap)


@pytest.mark.parametrize(("height_iou", "follows"), [(True, "same person"), (False, "person behind")])
def test_height_modulated_iou_keeps_the_person_at_the_same_depth(height_iou: bool, follows: str) -> None:
    """A standing person's track, then two detections: the same person 10 px to the side (IoU 0.6,
    same height) and a person behind, aligned in x but shorter with feet higher (IoU 0.72, vertical
    overlap 0.72). Plain IoU hands the id to the person behind; IoU x vertical overlap keeps it."""
    person, same, behind = [100, 100, 140, 300], [110, 100, 150, 300], [100, 85, 140, 255]
    tracker = Tracker(TrackerConfig(height_iou=height_iou))
    for i in range(4):
        tracker.update(dets([person]), i / 30)
    before = tracker.update(dets([person]), 4 / 30).xyxy[0].astype(np.float64)
    out = tracker.update(dets([same, behind]), 5 / 30)
    assert out.ids.tolist() == [1]
    # The Kalman posterior moves from the track's box towards the matched detection.
    step = out.xyxy[0] - before
    boxes = {"same person": np.array(same, np.float64), "person behind": np.array(behind, np.float64)}
    cosine = {
        k: float(step @ (b - before) / np.linalg.norm(step) / np.linalg.norm(b - before)) for k, b in boxes.items()
    }
    assert cosine[follows] > 0.9 > max(v for k, v in cosine.items() if k != follows)


@pytest.mark.parametrize("selector", [np.array([False, True, True]), np.array([2, 1]), np.array([], np.int64)])
def test_detections_select_keeps_rows_aligned(selector: np.ndarray) -> None:
    d = dets([box_at(0), box_at(50), box_at(100)], scores=[0.1, 0.5, 0.9], classes=[0, 1, 2])
    sub = d.select(selector)
    rows = np.arange(3)[selector]
    np.testing.assert_array_equal(sub.xyxy, d.xyxy[rows])
    np.testing.assert_array_equal(sub.scores, d.scores[rows])
    np.testing.assert_array_equal(sub.class_ids, d.class_ids[rows])
    assert len(sub) == len(rows) and sub.xyxy.shape == (len(rows), 4) and sub.xyxy.dtype == np.float32


# -- Kalman ----------------------------------------------------------------------------------


def test_kalman_learns_velocity_in_pixels_per_second() -> None:
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(np.array([[100.0, 50.0, 40.0, 30.0]]))
    for k in range(1, 20):  # 60 px/s at 5 fps
        mean, cov = kf.predict(mean, cov, 0.2)
        mean, cov = kf.update(mean, cov, np.array([[100.0 + 12.0 * k, 50.0, 40.0, 30.0]]))
    assert mean[0, 4] == pytest.approx(60.0, rel=0.05)
    pred, pred_cov = kf.predict(mean, cov, 1.0)
    assert pred[0, 0] == pytest.approx(mean[0, 0] + 60.0, rel=0.01)
    assert pred_cov[0, 0, 0] > cov[0, 0, 0]  # uncertainty grows with elapsed time


# -- tracker ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("step_px", "fps"), [(10.0, 30.0), (20.0, 10.0), (30.0, 10.0), (30.0, 4.0)])
def test_fast_object_keeps_one_id(step_px: float, fps: float) -> None:
    """A 40 px wide box moving up to 3/4 of its width per frame: the new track must learn its
    velocity within a few detections (the initial velocity prior is wide enough), or every
    prediction lags behind and the object splits into a chain of ids."""
    tracker = Tracker()
    seen: set[int] = set()
    for i in range(20):
        seen |= set(tracker.update(dets([box_at(100.0 + step_px * i)]), i / fps).ids.tolist())
    assert seen == {1}


def test_tracks_report_the_detection_that_started_them() -> None:
    """Tracks.first_xyxy: the box of each track's first detection (before confirmation), kept
    aligned with its track when other tracks are forgotten."""
    tracker = Tracker(TrackerConfig(track_buffer_s=0.3))
    short, long_ = box_at(0.0, y=300.0), box_at(100.0)
    tracker.update(dets([short, long_]), 0.0)
    tracker.update(dets([short, box_at(104.0)]), 0.1)
    for i in range(2, 10):  # the first track is never seen again and is forgotten on the way
        out = tracker.update(dets([box_at(100.0 + 4 * i)]), i / 10)
    assert out.ids.tolist() == [2] and tracker.num_tracks == 1
    np.testing.assert_allclose(out.first_xyxy, [long_])
    assert float(out.xyxy[0, 0]) > 125.0  # the track itself has moved on (last detection at 136)


def test_empty_frames_and_confirmation_after_min_hits() -> None:
    tracker = Tracker(TrackerConfig(min_hits=3))
    frames = [Detections.empty(), dets([box_at(10)]), dets([box_at(14)]), dets([box_at(18)]), Detections.empty()]
    assert run(tracker, frames, 30.0) == [[], [], [], [1], []]


def test_one_frame_false_positive_is_never_reported_and_is_forgotten() -> None:
    tracker = Tracker()  # tentative_timeout_s 0.25: forgotten within 8 frames at 30 fps
    assert run(tracker, [dets([box_at(10)])] + [Detections.empty()] * 9, 30.0) == [[]] * 10
    assert tracker.num_tracks == 0


def test_id_kept_through_missed_frames_with_motion() -> None:
    # 6 px/frame at 30 fps; 8 frames missing: only the Kalman prediction can bridge the gap.
    frames = [dets([box_at(10 + 6 * f)]) if not 10 <= f < 18 else Detections.empty() for f in range(30)]
    ids = run(Tracker(), frames, 30.0)
    assert set(itertools.chain(*ids)) == {1}
    assert ids[20] == [1]


def test_low_score_detections_keep_a_track_alive() -> None:
    """ByteTrack's second stage: an occluded object (score 0.3) keeps its id, and a low-score
    detection never starts a track."""
    scores = [0.9] * 5 + [0.3] * 40 + [0.9] * 5  # 40 frames > track_buffer (1 s at 30 fps)
    frames = [dets([box_at(10 + 2 * f)], [s]) for f, s in enumerate(scores)]
    ids = run(Tracker(TrackerConfig(track_buffer_s=1.0)), frames, 30.0)
    assert all(i == [1] for i in ids[1:])
    without_stage2 = Tracker(TrackerConfig(low_score=0.4, track_buffer_s=1.0))  # no second stage
    ids2 = run(without_stage2, frames, 30.0)
    assert ids2[-1] == [2]  # lost during the occlusion: a new id afterwards
    assert run(Tracker(), [dets([box_at(10)], [0.3])] * 5, 30.0) == [[]] * 5


@pytest.mark.parametrize("fps", [30.0, 5.0])
@pytest.mark.parametrize("gap_s,same_id", [(0.8, True), (1.4, False)])
def test_track_buffer_is_in_seconds(fps: float, gap_s: float, same_id: bool) -> None:
    """A parked object disappears for gap_s; buffer 1 s. Same outcome at 30 and 5 fps."""
    tracker = Tracker(TrackerConfig(track_buffer_s=1.0))
    t = 0.0
    for _ in range(int(fps)):  # 1 s visible
        tracker.update(dets([box_at(100)]), t)
        t += 1 / fps
    tracker.update(Detections.empty(), t)
    t += gap_s
    tracker.update(dets([box_at(100)]), t)
    out = tracker.update(dets([box_at(100)]), t + 1 / fps)
    assert out.ids.tolist() == ([1] if same_id else [2])
    assert tracker.num_tracks == 1


def test_variable_frame_rate_keeps_one_id() -> None:
    rng = np.random.default_rng(3)
    t, ids = 0.0, set()
    tracker = Tracker()
    for _ in range(100):
        t += float(rng.choice([1 / 30, 1 / 10, 1 / 5]))
        ids.update(tracker.update(dets([box_at(20 + 80 * t, w=60)]), t).ids.tolist())  # 80 px/s
    assert ids == {1}


def test_crossing_objects_keep_their_ids() -> None:
    tracker = Tracker()
    out = []
    for f in range(60):
        a, b = box_at(10 + 5 * f, 100), box_at(310 - 5 * f, 160)
        out.append(tracker.update(dets([a, b]), f / 30))
    assert {tuple(o.ids.tolist()) for o in out[2:]} == {(1, 2)}
    assert out[-1].xyxy[0, 0] > out[-1].xyxy[1, 0]  # id 1 moved right, id 2 left


def test_reported_class_is_the_majority() -> None:
    tracker = Tracker()
    classes = [2, 2, 7, 2, 7, 2, 2, 7]
    out = [tracker.update(dets([box_at(10 + f)], classes=[c]), f / 30) for f, c in enumerate(classes)]
    assert [o.class_ids.tolist() for o in out[1:]] == [[2]] * 7


def test_class_aware_matching_splits_classes() -> None:
    tracker = Tracker(TrackerConfig(class_aware=True))
    frames = [dets([box_at(10)], classes=[2]), dets([box_at(10)], classes=[2]), dets([box_at(10)], classes=[0])]
    run(tracker, frames, 30.0)
    assert tracker.num_tracks == 2


def test_two_instances_have_independent_ids() -> None:
    a, b = Tracker(), Tracker()
    for f in range(3):
        a.update(dets([box_at(10 + 200 * k) for k in range(3)]), f / 30)
    first_b = None
    for f in range(3):
        out_a = a.update(dets([box_at(10 + 200 * k) for k in range(3)]), (f + 3) / 30)
        out_b = b.update(dets([box_at(50)]), f / 30)
        first_b = out_b.ids.tolist() or first_b
    assert out_a.ids.tolist() == [1, 2, 3] and first_b == [1]


@pytest.mark.slow
def test_bounded_state_over_many_frames_of_churn() -> None:
    """Objects appear, cross and leave, plus random one-frame false positives."""
    rng = np.random.default_rng(7)
    cfg = TrackerConfig(track_buffer_s=1.0)
    tracker = Tracker(cfg)
    fps, max_tracks, seen_ids, n_fp = 30.0, 0, set(), 0
    for f in range(20_000):
        born = np.arange(max(0, (f - 100) // 25), f // 25 + 1)
        x = (f - born * 25) * 6.0
        live = (x >= 0) & (x < 600)
        boxes = [box_at(xx, 50 + 60 * (b % 5)) for xx, b in zip(x[live], born[live])]
        if rng.random() < 0.3:
            boxes.append(box_at(float(rng.uniform(0, 600)), float(rng.uniform(0, 400))))
            n_fp += 1
        out = tracker.update(dets(boxes), f / fps)
        seen_ids.update(out.ids.tolist())
        max_tracks = max(max_tracks, tracker.num_tracks)
    # visible objects + objects lost within the buffer + false positives awaiting a 2nd hit
    bound = 5 + (fps * cfg.track_buffer_s / 25 + 1) + (fps * cfg.tentative_timeout_s + 1) + 2
    assert max_tracks <= bound
    # One id per object (800). A lone false positive is never confirmed; two random ones at
    # nearly the same place within tentative_timeout_s are (about 2 % of them here).
    assert 800 <= len(seen_ids) <= 800 + 0.05 * n_fp


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="low_score"):
        TrackerConfig(low_score=0.6, high_score=0.5)
    with pytest.raises(ValueError, match="min_hits"):
        TrackerConfig(min_hits=0)
    with pytest.raises(ValueError, match="tentative_low_iou"):
        TrackerConfig(tentative_low_iou=0.0)


# -- real trajectories (MOT17 ground truth made into noisy detections) -------------------------


def _mot17_frames(root, seq: str, seed: int = 0):
    """Yield (frame, gt_ids, gt_xyxy, noisy Detections): 10 % dropped, 3 % jitter, score from visibility."""
    g = np.loadtxt(root / "mot" / "MOT17" / "train" / seq / "gt" / "gt.txt", delimiter=",")
    g = g[(g[:, 6] == 1) & (g[:, 7] == 1) & (g[:, 8] >= 0.3)]  # pedestrians, visible enough
    rng = np.random.default_rng(seed)
    for f in range(1, int(g[:, 0].max()) + 1):
        r = g[g[:, 0] == f]
        xyxy = np.c_[r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]]
        noisy = xyxy + rng.normal(0, 0.03, xyxy.shape) * np.c_[r[:, 4], r[:, 5], r[:, 4], r[:, 5]]
        keep = rng.random(len(r)) > 0.1
        scores = np.clip(0.9 * r[:, 8] + rng.normal(0, 0.1, len(r)), 0.05, 1.0)
        yield (
            f,
            r[:, 1].astype(np.int64),
            xyxy,
            Detections(noisy[keep], scores[keep], np.zeros(int(keep.sum()), np.int64)),
        )


@pytest.mark.shared
@pytest.mark.parametrize("divisor", [1, 3])  # 30 fps and 10 fps
def test_mot17_tracks_and_line_counts_match_ground_truth(shared_data, divisor: int) -> None:
    """MOT17-09: the tracker follows real pedestrians through drops and jitter, and a line
    counter fed with its tracks counts what the same counter counts on the ground-truth ids."""
    from edgetally.counting import LineCounter
    from edgetally.structures import Tracks

    tracker = Tracker()
    on_tracks = LineCounter("mid", (960, 0), (960, 1080), ["person"], forget_after_s=3.0)
    on_truth = LineCounter("mid", (960, 0), (960, 1080), ["person"], forget_after_s=3.0)
    covered = total = switches = 0
    last: dict[int, int] = {}
    ev_t, ev_g = [], []
    for f, gid, gxyxy, d in _mot17_frames(shared_data, "MOT17-09-FRCNN"):
        if (f - 1) % divisor:
            continue
        ts = (f - 1) / 30.0
        out = tracker.update(d, ts)
        ev_t += on_tracks.update(out, f, ts)
        truth = Tracks(gid, gxyxy, np.ones(len(gid)), np.zeros(len(gid), np.int64))
        ev_g += on_truth.update(truth, f, ts)
        rows, cols, _, _ = match(iou_matrix(gxyxy, out.xyxy), 0.5)
        covered, total = covered + len(rows), total + len(gid)
        for g, t in zip(gid[rows].tolist(), out.ids[cols].tolist()):
            switches += int(last.get(g, t) != t)
            last[g] = t
    ev_t += on_tracks.flush()
    ev_g += on_truth.flush()
    # Measured (seed 0): coverage 0.84 / 0.81, 23 / 20 id switches over 25 people; line counts
    # in 1, out 7 on the tracks vs in 1, out 8 on the ground truth, at both frame rates.
    assert covered / total >= 0.78
    assert switches <= 35

    def count(evs, d):
        return sum(e.direction == d for e in evs)

    for direction in ("in", "out"):
        assert abs(count(ev_t, direction) - count(ev_g, direction)) <= 1, (direction, len(ev_t), len(ev_g))


@pytest.mark.parametrize(("per_s", "same_id"), [(0.5, True), (0.0, False)], ids=["grown", "plain"])
def test_lost_track_refound_with_a_box_grown_by_its_gap(per_s: float, same_id: bool) -> None:
    """A stationary 100 px box, unseen for 0.5 s, reappears 68 px away: IoU with its plain
    prediction 0.19 (< match_iou 0.2), with the prediction grown by min(0.5/s x 0.5 s, 0.2) = 0.2
    of its size on each side 0.21. Stage 1b re-finds it; without it a new id starts."""
    tracker = Tracker(TrackerConfig(lost_expand_per_s=per_s))
    box = [0.0, 0.0, 100.0, 100.0]
    frames = [dets([box])] * 3 + [dets([])] * 4 + [dets([[68.0, 0.0, 168.0, 100.0]])] * 2
    ids = run(tracker, frames, 10.0)
    assert ids[0] == [] and ids[1] == [1] and ids[3:7] == [[]] * 4
    assert (ids[-1] == [1]) is same_id


# -- a slow detector (issue 13) ----------------------------------------------------------------


@pytest.mark.parametrize("cross_class_iou,tracks", [(0.7, 1), (1.0, 2)])
def test_one_object_boxed_as_two_classes_is_one_track(cross_class_iou: float, tracks: int) -> None:
    """Per-class NMS keeps a car box and a truck box on one vehicle; both would start a track."""
    tracker = Tracker(TrackerConfig(cross_class_iou=cross_class_iou))
    ids = set()
    for f in range(4):
        car, truck = box_at(10 + 4 * f), box_at(11 + 4 * f, 101)
        ids |= set(tracker.update(dets([car, truck], [0.8, 0.6], [2, 7]), f / 30).ids.tolist())
    assert len(ids) == tracks


def lane(f: int) -> list[float]:
    """A car in another lane, 20 px per detection (half its width): shows the tracker that
    objects here move far between two detections of a slow detector."""
    return box_at(600 - 20 * f, 300)


@pytest.mark.parametrize(
    "fps,score,others_move,confirmed",
    [
        (30.0, 0.35, True, False),  # full rate: a 0.35 box starts nothing (new_track_score 0.5)
        (4.0, 0.35, True, True),  # slow detector: few boxes before a line, start from 0.25
        (4.0, 0.27, True, True),
        (4.0, 0.22, True, False),
        (4.0, 0.35, False, False),  # slow, but nothing moves far between detections: full-rate rules
    ],
)
def test_a_slow_detector_starts_tracks_from_lower_scores(
    fps: float, score: float, others_move: bool, confirmed: bool
) -> None:
    tracker = Tracker()
    other = lane if others_move else (lambda f: box_at(400, 300))
    for f in range(4):  # the other car alone first: it is confirmed and its motion learned
        tracker.update(dets([other(f)], [0.9]), f / fps)
    out = [tracker.update(dets([other(f), box_at(10 + 3 * f)], [0.9, score]), f / fps) for f in range(4, 8)]
    assert (len(out[-1]) == 2) is confirmed


@pytest.mark.parametrize(
    "fps,others_move,survives",
    [
        (3.0, True, True),
        (3.0, False, True),  # a slow detector's miss is long however slowly things move
        (30.0, False, False),  # full rate: tentative_timeout_s, a quarter of a second
    ],
)
def test_a_tentative_track_survives_one_missed_detection_of_a_slow_detector(
    fps: float, others_move: bool, survives: bool
) -> None:
    """At 3 detections per second one missed detection is 0.67 s, far beyond tentative_timeout_s
    (0.25 s: at full rate, 8 missed frames end a tentative track)."""
    tracker = Tracker()
    other = lane if others_move else (lambda f: box_at(400, 300))
    for f in range(4):
        tracker.update(dets([other(f)]), f / fps)
    missed = 1 if fps < 10 else 8
    frames = [[box_at(10)], *([[]] * missed), [box_at(12)], [box_at(14)]]
    out = [tracker.update(dets([other(f + 4), *b]), (f + 4) / fps).ids.tolist() for f, b in enumerate(frames)]
    assert out[-1] == ([1, 2] if survives else [1, 3])


@pytest.mark.parametrize(
    "fps,step,tentative_low_iou,confirmed_at",
    [
        (12.0, 4.0, 0.5, 1),  # one box >= 0.5, then 0.35s: the second look confirms it
        (12.0, 4.0, 1.0, None),  # stage 5c off: the 0.35s keep nothing alive, the car is never reported
        (12.0, 16.0, 0.5, None),  # 0.4 of its width per detection: IoU 0.43, not the same box at full rules
        (4.0, 16.0, 0.5, 1),  # a slow detector: stage 3's grown boxes, as for a high-score second box
        (4.0, 16.0, 1.0, None),
    ],
)
def test_a_weak_second_look_confirms_a_tentative_track(
    fps: float, step: float, tentative_low_iou: float, confirmed_at: int | None
) -> None:
    """A nano or INT8 detector scores a clear car 0.2-0.6 from frame to frame: a track started by
    its one confident box takes the next 0.35 box (low_score..high_score) as its second look."""
    tracker = Tracker(TrackerConfig(tentative_low_iou=tentative_low_iou))
    scores = [0.55] + [0.35] * 5
    out = run(tracker, [dets([box_at(10 + step * f)], [s]) for f, s in enumerate(scores)], fps)
    first = next((f for f, ids in enumerate(out) if ids), None)
    assert first == confirmed_at
    if confirmed_at is not None:
        assert all(ids == [1] for ids in out[confirmed_at:])  # one id, kept by the low boxes (stage 4)


@pytest.mark.parametrize("jump_gate,ids", [(9.21, {2}), (0.0, set())])  # 0: never confirmed
def test_boxes_that_no_longer_overlap_are_matched_by_motion(jump_gate: float, ids: set[int]) -> None:
    """4 detections per second of a 40 px wide object moving 48 px between them: no IoU, even
    grown, between consecutive boxes. The Kalman-gated centre distance keeps one id."""
    tracker = Tracker(TrackerConfig(jump_gate=jump_gate))
    got = set()
    for f in range(12):
        boxes = [lane(f)] + ([box_at(10 + 48 * (f - 4))] if f >= 4 else [])
        got |= set(tracker.update(dets(boxes), f / 4.0).ids.tolist()) - {1}  # 1: the car in the other lane
    assert got == ids


@pytest.mark.parametrize("jump_tentative_score,confirmed", [(0.5, False), (0.3, True)])
def test_a_far_box_confirms_a_new_track_only_above_the_tentative_jump_score(
    jump_tentative_score: float, confirmed: bool
) -> None:
    """Without overlap or velocity, a link needs two boxes of at least jump_tentative_score
    (by default any box that may start a track on a slow detector)."""
    tracker = Tracker(TrackerConfig(jump_tentative_score=jump_tentative_score))
    got = set()
    for f in range(10):
        boxes, scores = [lane(f)], [0.9]
        if f >= 4:
            boxes.append(box_at(10 + 48 * (f - 4)))
            scores.append(0.9 if f == 4 else 0.35)
        got |= set(tracker.update(dets(boxes, scores), f / 4.0).ids.tolist()) - {1}
    assert bool(got) is confirmed


def wide_car(x: float) -> list[float]:
    """A car 120 px long moving 80 px per detection: two thirds of its length."""
    return box_at(x, 160, 120, 60)


@pytest.mark.parametrize("max_unseen,ids", [(2.5, [1, 2, 3]), (100.0, [1, 2])])
def test_a_track_lost_for_a_second_does_not_take_an_object_coming_the_other_way(
    max_unseen: float, ids: list[int]
) -> None:
    """A car seen twice, then gone for a second (4 detections): its Kalman gate has grown wide
    enough to take a car entering from the other side, going the other way (traffic_road.mp4
    at 5 per second: a car gone at the left edge took one entering at the right, and the
    crossing of the second was lost). Jumps need a track seen at most one detection ago."""
    tracker = Tracker(TrackerConfig(jump_max_unseen=max_unseen))
    got: set[int] = set()
    for f in range(12):
        boxes = [lane(f)]
        if f in (4, 5):
            boxes.append(wide_car(100 + 80 * f))
        if f >= 9:
            boxes.append(wide_car(300 - 80 * (f - 9)))
        got |= set(tracker.update(dets(boxes), f / 4.0).ids.tolist())
    assert sorted(got) == ids


@pytest.mark.parametrize(
    "back_date,fps,crossings",
    [
        (True, 4.0, 1),  # first seen 5 px past the line, 48 px per detection: it was before it
        (False, 4.0, 0),
        (True, 30.0, 0),  # full rate: a box on the line says nothing about where it came from
    ],
)
def test_a_car_first_detected_just_past_the_line_counts_at_a_slow_rate(
    back_date: bool, fps: float, crossings: int
) -> None:
    """The detector missed the car at its last detection before the line. Its first box is moved
    back one detection interval at its measured speed (Tracks.first_xyxy), where a line counter
    arms it: the crossing is seen."""
    from edgetally.counting import LineCounter

    tracker = Tracker(TrackerConfig(birth_back_date=back_date))
    counter = LineCounter("L", (200, 0), (200, 400), ["person", "bicycle", "car"])
    step = 48.0 * 4.0 / fps  # the same speed in px/s at either rate
    events = []
    for f in range(12):
        boxes = [box_at(600 - 20 * 4.0 / fps * f, 300)]  # the other lane: shows how far things move
        if f >= 6:
            boxes.append(box_at(185 + step * (f - 6)))  # bottom-centre 205 px at its first detection
        events += counter.update(tracker.update(dets(boxes), f / fps), f, f / fps)
    events += counter.flush()
    assert [(e.direction, e.track_id) for e in events] == [("out", 2)] * crossings


@pytest.mark.parametrize("guard,back_dated", [(1.0, False), (0.0, True)])
def test_a_new_track_beside_a_lost_one_keeps_its_first_box(guard: float, back_dated: bool) -> None:
    """A new id where a lost track is predicted is probably that track again (an id switch),
    which may have been counted: its first box is left where it was detected. (The new box
    here is too big to be matched to the lost car, by overlap or by a jump.)"""
    tracker = Tracker(TrackerConfig(birth_guard=guard))
    out = None
    for f in range(12):
        boxes = [lane(f)]
        if f < 6:  # a car, then lost at x = 10 + 48 f
            boxes.append(box_at(10 + 48 * f))
        if f >= 7:  # something 3.5 times its size where it would be, 10 px lower
            boxes.append(box_at(48 * f - 40, 55, 140, 105))
        out = tracker.update(dets(boxes), f / 4.0)
    assert out is not None and out.first_xyxy is not None
    big = (out.xyxy[:, 2] - out.xyxy[:, 0] > 100).tolist().index(True)
    first_x = float(out.first_xyxy[big, 0])
    assert (first_x < 48 * 7 - 40 - 24) is back_dated  # detected at 296; back-dated to about 248


@pytest.mark.parametrize("class_aware,ids", [(True, [1, 2, 3]), (False, [1, 2])])
def test_class_aware_matching_holds_for_a_lost_track_too(class_aware: bool, ids: list[int]) -> None:
    """A car missed once and a truck where it would be: class-aware, the lost car is not re-found
    on the truck's box (stage 1b, the lost tracks' grown boxes, used to ignore the class)."""
    tracker = Tracker(TrackerConfig(class_aware=class_aware))
    got: set[int] = set()
    for f in range(8):
        boxes, classes = [box_at(400, 300)], [2]
        if f < 4 or f > 4:  # missed at frame 4
            boxes.append(box_at(10 + 4 * f))
            classes.append(2 if f < 4 else 7)
        got |= set(tracker.update(dets(boxes, classes=classes), f / 30).ids.tolist())
    assert sorted(got) == ids

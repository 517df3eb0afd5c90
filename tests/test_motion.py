"""Motion between detections: optical-flow propagation, the detect/propagate rate split, and the
stage that ties them to the tracker (issue 13)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgetally.errors import ConfigError
from edgetally.motion import FlowPropagator
from edgetally.motion.rate import RatePlan, RateSplit, plan_rate
from edgetally.motion.stage import MotionTracker
from edgetally.structures import Detections
from edgetally.tracking import Tracker

W, H = 640, 360


def texture(seed: int = 0) -> np.ndarray:
    """A grey, blurred random texture: every patch has gradients for Lucas-Kanade."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (H, W), dtype=np.uint8)
    return cv2.GaussianBlur(img, (5, 5), 1.5)


def warp(img: np.ndarray, dx: float, dy: float, scale: float = 1.0, centre: tuple[float, float] = (0, 0)) -> np.ndarray:
    m = cv2.getRotationMatrix2D(centre, 0.0, scale)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(img, m, (W, H), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("dx,dy", [(6.0, -3.0), (-12.5, 4.0), (0.0, 0.0), (20.0, 0.0)])
def test_flow_recovers_a_known_shift(dx: float, dy: float) -> None:
    a = texture()
    boxes = np.array([[100, 100, 180, 160], [300, 200, 420, 280], [500, 40, 560, 90]], np.float32)
    prop = FlowPropagator()
    prop.observe(a)
    moved, ok = prop.step(warp(a, dx, dy), boxes)
    assert ok.all()
    np.testing.assert_allclose(moved - boxes, np.tile([dx, dy, dx, dy], (3, 1)), atol=0.35)


def test_flow_recovers_a_known_scale() -> None:
    a = texture(1)
    box = np.array([[260, 140, 380, 220]], np.float32)  # centre (320, 180)
    prop = FlowPropagator()
    prop.observe(a)
    moved, ok = prop.step(warp(a, 0, 0, 1.06, (320, 180)), box)
    assert ok.all()
    w, h = moved[0, 2] - moved[0, 0], moved[0, 3] - moved[0, 1]
    assert w / 120 == pytest.approx(1.06, abs=0.01) and h / 80 == pytest.approx(1.06, abs=0.01)
    np.testing.assert_allclose((moved[0, :2] + moved[0, 2:]) / 2, [320, 180], atol=0.5)


def test_points_that_disagree_are_dropped() -> None:
    """A box a third on static background and two thirds on an object moving 7 px right: the
    box moves with the object, not by a blend of the two."""
    bg, obj = texture(2), texture(3)
    a, b = bg.copy(), bg.copy()
    a[100:260, 200:400] = obj[100:260, 200:400]
    b[100:260, 207:407] = obj[100:260, 200:400]
    box = np.array([[150, 120, 350, 240]], np.float32)  # x 150-200 is background
    prop = FlowPropagator()
    prop.observe(a)
    moved, ok = prop.step(b, box)
    assert ok[0]
    assert moved[0, 0] - box[0, 0] == pytest.approx(7.0, abs=0.6)


def test_a_box_without_texture_keeps_its_place_and_is_not_ok() -> None:
    a = texture(4)
    a[200:300, 400:560] = 128  # flat: nothing for Lucas-Kanade to follow
    box = np.array([[420, 220, 540, 280], [100, 100, 180, 160]], np.float32)
    prop = FlowPropagator()
    prop.observe(a)
    moved, ok = prop.step(warp(a, 3, 0), box)
    assert ok.tolist() == [False, True]
    np.testing.assert_array_equal(moved[0], box[0])


def test_no_previous_frame_means_nothing_moves() -> None:
    a = texture(5)
    box = np.array([[100, 100, 180, 160]], np.float32)
    prop = FlowPropagator()
    moved, ok = prop.step(a, box)  # first frame ever
    assert not ok.any() and (moved == box).all()
    moved, ok = prop.step(warp(a, 4, 0), box)  # the previous call's frame is the reference now
    assert ok.all()
    prop.reset()
    assert not prop.step(warp(a, 8, 0), box)[1].any()
    prop.observe(a)
    assert not prop.step(cv2.resize(a, (320, 180)), box)[1].any()  # a new frame size is a restart


def test_colour_frames_are_accepted() -> None:
    a = cv2.cvtColor(texture(6), cv2.COLOR_GRAY2BGR)
    prop = FlowPropagator()
    prop.observe(a)
    moved, ok = prop.step(warp(a, 5, 2), np.array([[100, 100, 200, 170]], np.float32))
    assert ok.all() and moved[0, 0] == pytest.approx(105, abs=0.4)


# -- the tracker's propagate path ------------------------------------------------------------


def _scene(n: int, speed: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured 60 x 40 px object crossing a flat background at ``speed`` px per frame."""
    obj = texture(7)[:40, :60]
    images, boxes = [], []
    for i in range(n):
        img = np.full((H, W), 90, np.uint8)
        x = 20 + speed * i
        img[150:190, int(x) : int(x) + 60] = obj
        images.append(img)
        boxes.append(np.array([int(x), 150, int(x) + 60, 190], np.float32))
    return images, boxes


def test_ids_survive_skipped_frames_of_a_fast_object() -> None:
    """An object moving 30 px per frame (half its width), detected on every 6th frame only: it
    moves 180 px (3 widths) between detections, so without motion no box would overlap. Flow
    carries the track: one id, reported on every frame, near the object."""
    images, boxes = _scene(19, 30.0)
    stage = MotionTracker(Tracker())
    seen = []
    for i, (img, box) in enumerate(zip(images, boxes)):
        dets = Detections(box[None], np.array([0.9], np.float32), np.array([2])) if i % 6 == 0 else None
        tracks = stage.step(img, dets, i / 30.0)
        if i >= 6:  # confirmed at its second detection
            assert len(tracks) == 1, f"frame {i}: {tracks.ids}"
            assert abs(tracks.xyxy[0, 0] - box[0]) < 8.0, f"frame {i}: {tracks.xyxy[0]} vs {box}"
            seen.append(int(tracks.ids[0]))
    assert set(seen) == {1}


def test_propagation_does_not_age_or_confirm_tracks() -> None:
    tracker = Tracker()
    box = np.array([[100, 100, 160, 140]], np.float32)
    det = Detections(box, np.array([0.9], np.float32), np.array([2]))
    tracker.update(det, 0.0)
    ids, xyxy = tracker.motion_targets()
    assert ids.tolist() == [1]  # a tentative track is carried too
    assert len(tracker.propagate(ids, xyxy + 5, 0.1)) == 0  # but not confirmed by motion
    assert tracker.update(det.__class__(box + 10, det.scores, det.class_ids), 0.2).ids.tolist() == [1]
    for k in range(1, 30):  # 3 s of frames nobody looked at: the track is neither lost nor forgotten
        out = tracker.propagate(*tracker.motion_targets(), 0.2 + k / 10)
        assert out.ids.tolist() == [1]
    with pytest.raises(ValueError, match="unknown track ids"):
        tracker.propagate(np.array([99]), box, 3.5)


# -- the rate split --------------------------------------------------------------------------


def _decisions(split: RateSplit, n: int, fps: float, **kw) -> list[int]:
    return [i for i in range(n) if split.decide(i / fps, **kw)]


@pytest.mark.parametrize(
    "plan,fps,frames,expected",
    [
        (RatePlan(), 30.0, 5, [0, 1, 2, 3, 4]),
        (RatePlan(detect_every=3), 30.0, 10, [0, 3, 6, 9]),
        (RatePlan(detect_fps=10.0), 30.0, 10, [0, 3, 6, 9]),
        (RatePlan(detect_fps=5.0), 15.0, 16, [0, 3, 6, 9, 12, 15]),
        (RatePlan(detect_fps=8.0), 15.0, 16, [0, 2, 4, 6, 7, 9, 11, 13, 15]),  # 8 per second on average
        (RatePlan(detect_fps=30.0), 30.0, 4, [0, 1, 2, 3]),
    ],
)
def test_rate_split_table(plan: RatePlan, fps: float, frames: int, expected: list[int]) -> None:
    assert _decisions(RateSplit(plan), frames, fps) == expected


def test_detect_fps_keeps_its_average_on_an_odd_camera_rate() -> None:
    split = RateSplit(plan_rate(detect_fps=5, source_fps=23.976))
    n = len(_decisions(split, 2398, 23.976))  # 100 s
    assert n == pytest.approx(500, abs=1)
    stats = split.stats()
    assert stats.camera_fps == pytest.approx(23.976, rel=1e-3) and stats.detect_fps == pytest.approx(5, rel=0.02)
    assert stats.detected + stats.propagated == stats.frames == 2398


def test_a_busy_detector_lowers_the_rate_instead_of_queueing() -> None:
    """detect_every 2, but the detector takes 3 frame times: every 4th frame (the next free one)."""
    split = RateSplit(plan_rate(detect_every=2), live=True)
    busy_until = -1.0
    got = []
    for i in range(12):
        ts = i / 30.0
        if split.decide(ts, detector_busy=ts < busy_until):
            got.append(i)
            busy_until = ts + 3 / 30.0 - 1e-9
    assert got == [0, 3, 6, 9]


def test_auto_on_a_file_follows_the_inference_time() -> None:
    split = RateSplit(plan_rate(detect_fps="auto"))
    got = []
    for i in range(40):
        if split.decide(i / 25.0):
            got.append(i)
            split.inference_done(0.110)  # 110 ms per inference at 25 fps (40 ms frames): every 3rd
    assert np.diff(got[2:]).tolist() == [3] * len(got[3:])
    assert split.stats().infer_ms == pytest.approx(110.0)
    live = RateSplit(plan_rate(detect_fps="AUTO"), live=True)
    assert [live.decide(i / 25, detector_busy=b) for i, b in enumerate([False, True, True, False])] == [
        True,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize(
    "every,fps,source,message",
    [
        (None, 40, 30.0, "above the source's 30"),
        (None, 0, 30.0, "must be > 0"),
        (None, -5, None, "must be > 0"),
        (None, "fast", 30.0, "expected a number"),
        (None, float("nan"), 30.0, "expected a number"),
        (None, True, 30.0, "expected a number"),
        (0, None, 30.0, "whole number of frames >= 1"),
        (2.5, None, 30.0, "whole number of frames >= 1"),
        ("x", None, 30.0, "whole number of frames >= 1"),
        (2, 5, 30.0, "not both"),
    ],
)
def test_rate_settings_are_validated(every: object, fps: object, source: float | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        plan_rate(every, fps, source)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "every,fps,source,plan",
    [
        (None, None, 30.0, RatePlan()),
        ("3", None, 30.0, RatePlan(detect_every=3)),
        (4.0, None, None, RatePlan(detect_every=4)),
        (None, "7.5", 30.0, RatePlan(detect_fps=7.5)),
        (None, 30, 29.97, RatePlan(detect_fps=30.0)),  # a nominal 30 on a 29.97 camera is fine
        (None, " auto ", 30.0, RatePlan(auto=True)),
    ],
)
def test_valid_rate_settings(every: object, fps: object, source: float | None, plan: RatePlan) -> None:
    assert plan_rate(every, fps, source) == plan

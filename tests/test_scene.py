"""The synthetic traffic scene: deterministic per seed, and its ground truth is right.

The crossing check here is written independently of edgetally/demo/truth.py (orientation tests on the
anchor path, no shared geometry code), and box tightness is checked against the rendered pixels.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgetally.demo.scene import CLASSES, DEFAULT_LINE, SceneConfig, SceneTruth, iter_scene, render_scene


def _digest(cfg: SceneConfig) -> str:
    h = hashlib.sha256()
    for image, boxes, _ in iter_scene(cfg):
        h.update(image.tobytes())
        h.update(boxes.xyxy.tobytes())
        h.update(boxes.ids.tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def long_truth() -> SceneTruth:
    return render_scene(SceneConfig(seconds=30, seed=3), None)


# -- an independent crossing check ---------------------------------------------------------------


def _orient(a, b, c) -> float:
    """z of (b - a) x (c - a), image coordinates."""
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(p, q, r) -> bool:
    return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])


def _segments_meet(a, b, p, q) -> bool:
    """Closed segments a-b and p-q share a point (textbook orientation test)."""
    d1, d2 = _orient(p, q, a), _orient(p, q, b)
    d3, d4 = _orient(a, b, p), _orient(a, b, q)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return (
        (d1 == 0 and _on_segment(p, q, a))
        or (d2 == 0 and _on_segment(p, q, b))
        or (d3 == 0 and _on_segment(a, b, p))
        or (d4 == 0 and _on_segment(a, b, q))
    )


def _independent_crossings(truth: SceneTruth, line: tuple[float, float, float, float]) -> list[tuple]:
    p, q = (line[0], line[1]), (line[2], line[3])
    paths: dict[int, list[tuple[int, float, float]]] = {}
    for fb in truth.frames:
        for vid, (x1, _, x2, y2) in zip(fb.ids.tolist(), fb.xyxy.tolist()):
            paths.setdefault(vid, []).append((fb.index, (x1 + x2) / 2.0, y2))
    found = []
    for vid, path in paths.items():
        last = None  # last anchor strictly off the line: (side, point)
        prev_point = None
        for frame, x, y in path:
            side = np.sign(_orient(p, q, (x, y)))
            if side != 0 and last is not None and side != last and _segments_meet(prev_point, (x, y), p, q):
                found.append((frame, CLASSES[truth.vehicle_classes[vid]], "in" if side > 0 else "out", vid))
            if side != 0:
                last = side
            prev_point = (x, y)
    return sorted(found, key=lambda c: (c[0], c[3]))


LINES = [
    DEFAULT_LINE,  # vertical, full height: in = right-to-left
    (320.0, 360.0, 320.0, 0.0),  # the same line reversed: in and out swap
    (200.0, 0.0, 440.0, 360.0),  # slanted
    (480.0, 200.0, 480.0, 360.0),  # near lanes only
    (100.5, 0.0, 100.5, 180.0),  # far lanes only, half-pixel x
]


@pytest.mark.parametrize("line", LINES)
def test_crossings_match_an_independent_recount(long_truth: SceneTruth, line) -> None:
    mine = [(c.frame, c.class_name, c.direction, c.vehicle_id) for c in long_truth.crossings(line)]
    assert mine == _independent_crossings(long_truth, line)
    assert len(mine) > 0


def test_direction_convention(long_truth: SceneTruth) -> None:
    """Far lanes drive right-to-left: 'in' for the default line; reversing the line swaps in/out."""
    far_only = (320.0, 0.0, 320.0, 0.55 * 360)
    assert {c.direction for c in long_truth.crossings(far_only)} == {"in"}
    fwd, rev = long_truth.counts(DEFAULT_LINE), long_truth.counts((320, 360, 320, 0))
    assert all(fwd[k]["in"] == rev[k]["out"] and fwd[k]["out"] == rev[k]["in"] for k in fwd)


def test_every_class_appears_and_crosses(long_truth: SceneTruth) -> None:
    assert {CLASSES[c] for c in long_truth.vehicle_classes.values()} == set(CLASSES)
    counts = long_truth.counts(DEFAULT_LINE)
    assert all(counts[name]["in"] + counts[name]["out"] > 0 for name in ("car", "truck", "bicycle"))
    assert sum(counts["car"].values()) > 10


def test_boxes_inside_frame_and_valid(long_truth: SceneTruth) -> None:
    for fb in long_truth.frames:
        b = fb.xyxy
        assert np.all(b[:, 0] >= 0) and np.all(b[:, 1] >= 0)
        assert np.all(b[:, 2] <= long_truth.width) and np.all(b[:, 3] <= long_truth.height)
        assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])
        assert np.all((fb.visibility >= 0) & (fb.visibility <= 1))
        assert len(set(fb.ids.tolist())) == len(fb.ids)
    vis = np.concatenate([fb.visibility for fb in long_truth.frames])
    assert 0.02 < np.mean(vis < 0.9) < 0.5  # occlusion happens, but most vehicles are mostly seen


def test_same_seed_same_scene_different_seed_different_scene() -> None:
    a, b, c = (SceneConfig(seconds=3, seed=s) for s in (11, 11, 12))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    ta, tb, tc = (render_scene(SceneConfig(seconds=12, seed=s), None) for s in (11, 11, 12))
    assert ta.crossings(DEFAULT_LINE) == tb.crossings(DEFAULT_LINE)
    assert ta.trajectories().keys() == tb.trajectories().keys()
    assert ta.crossings(DEFAULT_LINE) != tc.crossings(DEFAULT_LINE)


def test_boxes_are_tight_around_the_rendered_pixels() -> None:
    """With no noise, light change or occluders, the pixels that differ from the empty road are
    exactly the union of the vehicles: every unoccluded box is touched by them on all 4 sides."""
    kw = dict(seconds=2, seed=5, noise_sigma=0.0, lighting=0.0, occluders=False)
    road = next(iter_scene(SceneConfig(density=0.0, **kw)))[0].copy()
    checked = 0
    for image, fb, _ in iter_scene(SceneConfig(**kw)):
        changed = np.any(image != road, axis=2)
        union = np.zeros_like(changed)
        for box in fb.xyxy.astype(int):
            union[box[1] : box[3], box[0] : box[2]] = True
        assert not np.any(changed & ~union)  # nothing drawn outside the boxes
        for box, vis in zip(fb.xyxy.astype(int), fb.visibility):
            if vis < 1.0:
                continue
            sub = changed[box[1] : box[3], box[0] : box[2]]
            assert sub[0].any() and sub[-1].any() and sub[:, 0].any() and sub[:, -1].any()
            checked += 1
    assert checked > 100


def test_render_writes_video_and_truth_json(tmp_path: Path) -> None:
    cfg = SceneConfig(seconds=4, seed=2)
    truth = render_scene(cfg, tmp_path / "scene.mp4")
    cap = cv2.VideoCapture(str(tmp_path / "scene.mp4"))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (cfg.height, cfg.width, 3)
        n += 1
    assert n == cfg.num_frames == truth.num_frames
    out = truth.write_truth_json(tmp_path / "truth.json", "320,0,320,360", name="L")
    data = json.loads(out.read_text())
    assert data["counts"] == truth.counts(DEFAULT_LINE)
    assert data["total"]["in"] == sum(v["in"] for v in data["counts"].values())
    assert len(data["crossings"]) == data["total"]["in"] + data["total"]["out"]
    assert data["line"] == {"name": "L", "p1": [320.0, 0.0], "p2": [320.0, 360.0]}


def test_crossing_frames_are_frames_where_the_vehicle_is_seen(long_truth: SceneTruth) -> None:
    seen = {(fb.index, v) for fb in long_truth.frames for v in fb.ids.tolist()}
    assert all(
        (c.frame, c.vehicle_id) in seen and (c.frame - 1, c.vehicle_id) in seen
        for c in long_truth.crossings(DEFAULT_LINE)
    )


@pytest.mark.parametrize("bad", ["1,2,3", (0, 0, 0, 0), "a,b,c,d"])
def test_bad_lines_are_rejected(long_truth: SceneTruth, bad) -> None:
    with pytest.raises(ValueError):
        long_truth.crossings(bad)


def test_a_shorter_scene_is_the_start_of_a_longer_one() -> None:
    """Scene length changes neither the traffic nor the camera: 1 s of seed 4 = its first 15 frames of 2 s."""
    short = [(img.copy(), fb) for img, fb, _ in iter_scene(SceneConfig(seconds=1, seed=4))]
    long = [(img.copy(), fb) for img, fb, _ in iter_scene(SceneConfig(seconds=2, seed=4))]
    assert len(short) == 15 and len(long) == 30
    for (a, fa), (b, fb) in zip(short, long):
        assert np.array_equal(a, b) and np.array_equal(fa.xyxy, fb.xyxy) and np.array_equal(fa.ids, fb.ids)

"""benchmarks/frame_rates: the phase grid and the ``ideal`` stack (true identities), on synthetic clips."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.frame_rates.clips import Clip, CountLine, regeometry, transformed, with_misses
from benchmarks.frame_rates.plan import phases
from benchmarks.frame_rates.runs import Setting, detect_mask, error, run_ideal
from edgetally.structures import Detections


@pytest.mark.parametrize(
    "fps,rate,count,expected",
    [
        (30.0, 30.0, 5, [0]),
        (24.0, 12.0, 5, [0, 1]),  # a period shorter than the count: every offset
        (24.0, 8.0, 5, [0, 1, 2]),
        (25.0, 5.0, 5, [0, 1, 2, 3, 4]),
        (30.0, 3.0, 5, [0, 2, 4, 6, 8]),  # spread over the period of 10
        (30.0, 3.0, 1, [0]),
    ],
)
def test_phases_spread_over_one_grid_period(fps: float, rate: float, count: int, expected: list[int]) -> None:
    assert phases(fps, rate, count) == expected


def _walker_clip(false_positive_crosses: bool) -> Clip:
    """Two people walk right across x=100 at 30 fps (ids 7 and 9); a false positive (id -1)
    walks across too, or stays put."""
    frames, ids = [], []
    for f in range(60):
        boxes = [[40 + 2 * f, 50, 60 + 2 * f, 90], [20 + 2 * f, 150, 40 + 2 * f, 190]]
        boxes.append([30 + 3 * f, 250, 50 + 3 * f, 290] if false_positive_crosses else [300, 250, 320, 290])
        frames.append(Detections(np.array(boxes, np.float32), np.full(3, 0.9, np.float32), np.zeros(3, np.int64)))
        ids.append(np.array([7, 9, -1]))
    line = CountLine("L", (100.0, 0.0), (100.0, 400.0))
    return Clip("walkers", 30.0, frames, ("person",), (line,), {"L": {"in": 0, "out": 2}}, true_ids=ids)


@pytest.mark.parametrize("false_positive_crosses", [True, False])
@pytest.mark.parametrize("rate", [30.0, 5.0])
def test_ideal_counts_true_identities_only(false_positive_crosses: bool, rate: float) -> None:
    clip = _walker_clip(false_positive_crosses)
    mask = detect_mask(clip, Setting("input", rate, 0))
    result = run_ideal(clip, mask)
    assert result.counts == {"L": {"in": 0, "out": 2}}
    assert result.frames == int(mask.sum()) == (60 if rate == 30.0 else 10)
    assert error([(clip, result.counts)])["abs_error"] == 0.0


@pytest.mark.parametrize(
    "mirror,reverse,expected",
    [
        (False, False, {"in": 0, "out": 2}),
        (True, False, {"in": 2, "out": 0}),  # a mirror swaps the line's sides
        (False, True, {"in": 2, "out": 0}),  # backwards, each walker crosses the other way
        (True, True, {"in": 0, "out": 2}),
    ],
)
@pytest.mark.parametrize("rate", [30.0, 5.0])
def test_mirrored_and_reversed_clips_keep_truth_and_counter_in_step(
    mirror: bool, reverse: bool, expected: dict[str, int], rate: float
) -> None:
    """The traffic variants' truth transform agrees with what the line counter counts on the
    transformed boxes; the line moves with the mirror (x=100 -> x=540 in a 640 px frame)."""
    clip = transformed(_walker_clip(False), "t", None, mirror_width=640.0 if mirror else None, reverse=reverse)
    assert clip.truth == {"L": expected}
    assert clip.lines[0].p1[0] == (540.0 if mirror else 100.0)
    result = run_ideal(clip, detect_mask(clip, Setting("input", rate, 0)))
    assert result.counts == {"L": expected}


@pytest.mark.parametrize(
    "scale,transpose,line,expected",
    [
        (1.0, False, ((100.0, 0.0), (100.0, 400.0)), {"in": 0, "out": 2}),
        (3.0, False, ((300.0, 0.0), (300.0, 1200.0)), {"in": 0, "out": 2}),  # the line scales with the boxes
        # walkers move down across y=100; a transpose is a mirror about y = x: the sides swap
        (1.0, True, ((0.0, 100.0), (400.0, 100.0)), {"in": 2, "out": 0}),
        (0.5, True, ((0.0, 50.0), (200.0, 50.0)), {"in": 2, "out": 0}),
    ],
)
@pytest.mark.parametrize("rate", [30.0, 5.0])
def test_scaled_and_transposed_clips_keep_truth_and_counter_in_step(
    scale: float, transpose: bool, line: tuple, expected: dict[str, int], rate: float
) -> None:
    clip = regeometry(_walker_clip(False), scale, transpose)
    assert (clip.lines[0].p1, clip.lines[0].p2) == line and clip.truth == {"L": expected}
    assert clip.video is None  # no frames to run optical flow on: input-rate rows only
    first = clip.detections[0].xyxy[0].tolist()
    assert first == (
        [50 * scale, 40 * scale, 90 * scale, 60 * scale]
        if transpose
        else [40 * scale, 50 * scale, 60 * scale, 90 * scale]
    )
    result = run_ideal(clip, detect_mask(clip, Setting("input", rate, 0)))
    assert result.counts == {"L": expected}


def test_a_clip_with_misses_drops_boxes_at_random_and_keeps_their_identities_aligned() -> None:
    clip = _walker_clip(True)  # 60 frames x 3 boxes, ids 7, 9, -1 in every frame

    def boxes(c: Clip) -> list[list]:
        return [d.xyxy.tolist() for d in c.detections]

    assert boxes(with_misses(clip, 0.0)) == boxes(clip)
    half = with_misses(clip, 0.5)
    kept = sum(len(d.scores) for d in half.detections)
    assert 60 < kept < 120  # about half of 180
    assert boxes(with_misses(clip, 0.5)) == boxes(half)  # seeded: every run drops the same boxes
    for d, ids in zip(half.detections, half.true_ids):
        # each kept box keeps its own identity (the walkers' rows are ordered 7, 9, -1 by their y)
        expected = {50.0: 7, 150.0: 9, 250.0: -1}
        assert [expected[float(y)] for y in d.xyxy[:, 1]] == ids.tolist()
    assert half.video == clip.video and half.truth == clip.truth


@pytest.mark.parametrize(
    "args,message",
    [
        (["--traffic-model", "{tmp}"], "not an artifact directory"),
        (["--datasets", "traffic,nope"], "datasets among"),
        (["--phases", "0"], "--phases >= 1"),
        (["--scale", "0"], "--scale > 0"),
        (["--drop-detections", "1"], "0 <= --drop-detections < 1"),
        (["--noise", "miss=0"], "--noise miss: not a NoiseSpec field"),
        (["--noise", "miss_rate"], "expected KEY=VALUE"),
        (["--noise", "jitter=lots"], "--noise jitter='lots': expected a value like 0.05"),
        (["--noise", "tp_score_beta=8"], "expected a value like (8.0, 2.0)"),
        (["--noise", "seed=1.5"], "expected a value like 2024"),
        # a flag written in lower case is the string 'false', which a bool field would take as true
        (["--tracker-param", "height_iou=false"], "--tracker-param height_iou='false': expected True or False"),
        (["--tracker-param", "matchiou=0.3"], "--tracker-param matchiou: not a TrackerConfig field"),
        (["--tracker-param", "noise.pos_weight=x"], "noise.pos_weight='x': expected a value like 0.05"),
        (["--tracker-param", "min_hits=2.5"], "--tracker-param min_hits=2.5: expected a value like 2"),
        (["--counter-param", "anchor=3"], "--counter-param anchor=3: expected a value like 'bottom_center'"),
        (["--counter-param", "settle=1"], "--counter-param settle: not a LineCounter field"),
        (["--flow-param", "grid=2.5"], "--flow-param grid=2.5: expected a value like 3"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(args: list[str], message: str, tmp_path, capsys) -> None:
    from benchmarks.frame_rates.__main__ import main

    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.shared
def test_mot17_clips_keep_the_asked_lines_and_noise(shared_data) -> None:
    """``--mot17-lines`` keeps one orientation with its truth unchanged; ``--noise`` changes the
    derived detections (no misses: more boxes), not the truth."""
    from benchmarks.frame_rates.clips import mot17_clips

    full = mot17_clips()
    for line_set in ("h", "v"):
        part = mot17_clips(line_set=line_set)
        for a, b in zip(full, part, strict=True):
            assert [ln.name[0] for ln in b.lines] == [line_set, line_set]
            assert b.truth == {name: t for name, t in a.truth.items() if name[0] == line_set}
    clean = mot17_clips({"miss_rate": 0.0, "occlusion_miss": 0.0})
    for a, b in zip(full, clean, strict=True):
        assert b.truth == a.truth
        assert sum(len(d) for d in b.detections) > sum(len(d) for d in a.detections)
    with pytest.raises(ValueError, match="MOT17 lines"):
        mot17_clips(line_set="x")


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"track_buffer_s": 3},  # a whole number for a float setting
        {"height_iou": False, "min_hits": 3, "noise.meas_weight": 0.1},
    ],
)
def test_overrides_of_the_right_kind_pass_the_check(values: dict) -> None:
    from benchmarks.tracking.overrides import check_overrides, counter_defaults, tracker_defaults

    check_overrides("--tracker-param", values, tracker_defaults(noise_prefix=True), "TrackerConfig")
    check_overrides("--counter-param", {"classes": ["car"], "anchor": "center"}, counter_defaults(), "LineCounter")


def test_the_tracking_benchmark_takes_no_kalman_noise_key() -> None:
    # benchmarks.tracking passes --ours-param to TrackerConfig as they are: no "noise." keys there
    from benchmarks.tracking.overrides import check_overrides, tracker_defaults

    with pytest.raises(ValueError, match="noise.meas_weight: not a TrackerConfig field"):
        check_overrides(
            "--ours-param", {"noise.meas_weight": 0.1}, tracker_defaults(noise_prefix=False), "TrackerConfig"
        )

"""benchmarks/frame_rates/pipeline.py: which `edge run` settings it measures and what frames it feeds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.frame_rates import pipeline
from benchmarks.frame_rates.detections import iter_frames


@pytest.mark.parametrize(
    ("input_rates", "detect_rates", "expected"),
    [
        ((), (), [("every frame", None, 1)]),
        ((), (5.0,), [("every frame", None, 1), ("detect 5/s", 5.0, 1)]),
        # 23.976 fps source: every 3rd frame for 8 fps, every 5th for 5 fps, every 8th for 3 fps
        (
            (8.0, 5.0, 3.0),
            (),
            [("every frame", None, 1), ("input 8 fps", None, 3), ("input 5 fps", None, 5), ("input 3 fps", None, 8)],
        ),
        ((30.0,), (), [("every frame", None, 1), ("input 30 fps", None, 1)]),
    ],
)
def test_settings_table(input_rates: tuple, detect_rates: tuple, expected: list) -> None:
    got = [(s.label, s.detect_fps, s.input_every) for s in pipeline.settings(input_rates, detect_rates)]
    assert got == expected


def test_settings_of_a_10_fps_clip_skip_detector_rates_above_it() -> None:
    got = [(s.label, s.detect_fps, s.input_every) for s in pipeline.settings((5.0, 3.0), (15.0, 8.0, 3.0), 10.0)]
    assert got == [
        ("every frame", None, 1),
        ("detect 8/s", 8.0, 1),
        ("detect 3/s", 3.0, 1),
        ("input 5 fps", None, 2),
        ("input 3 fps", None, 3),
    ]


@pytest.mark.parametrize(
    ("counted", "truth", "expected"),
    [
        ({"z": {"entered": 6, "exited": 6}}, {"z": {"entered": 6, "exited": 6}}, 0.0),
        ({"z": {"entered": 8, "exited": 5}}, {"z": {"entered": 7, "exited": 4}}, 2 / 11),
        (
            {"l": {"in": 0, "out": 5}, "z": {"entered": 6, "exited": 6}},
            {"l": {"in": 0, "out": 6}, "z": {"entered": 6, "exited": 6}},
            1 / 18,
        ),
    ],
)
def test_visits_error_is_per_counter_and_direction(counted: dict, truth: dict, expected: float) -> None:
    from benchmarks.frame_rates.visits import abs_error, table

    row = {"clip": "c", "setting": "detect 3/s", "counted": counted, "truth": truth}
    assert abs_error(row) == pytest.approx(expected)
    assert table([row]).splitlines()[-1].endswith(f"| {100 * expected:.1f} |")


def test_every_kth_frame_folder_holds_the_decoded_pixels(shared_data: Path, tmp_path: Path) -> None:
    """The input-rate runs read a lossless folder of frames 0, k, 2k, ... on a timeline of fps / k."""
    folder, fps = pipeline.every_kth_source(5, tmp_path)
    files = sorted(folder.glob("*.png"))
    assert fps == pytest.approx(pipeline.SOURCE_FPS / 5)
    assert [f.name for f in files[:3]] == ["00000.png", "00005.png", "00010.png"]
    assert len(files) == 96  # 480 frames
    frames = iter_frames(shared_data / "videos" / "traffic_road.mp4")
    for _ in range(5):
        next(frames)
    np.testing.assert_array_equal(cv2.imread(str(files[1])), next(frames))
    assert pipeline.every_kth_source(1, tmp_path) == (pipeline.TRAFFIC_VIDEO, None)

"""Drawing: `edge snapshot` (grid + lines where expected) and `edge run --annotate` (a video)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetally.annotate import LINE_COLOUR, DrawLine, annotate, snapshot_image
from edgetally.structures import Tracks

REPO = Path(__file__).resolve().parents[1]


def _is_line_colour(px: np.ndarray) -> bool:
    return bool(np.all(np.abs(px.astype(int) - np.array(LINE_COLOUR)) < 40))


@pytest.mark.parametrize(
    "p1, p2, on, off",
    [
        ((100, 0), (100, 199), [(100, 50), (100, 150)], [(60, 150), (150, 50)]),
        ((0, 120), (299, 120), [(200, 120), (280, 120)], [(200, 60), (200, 180)]),
    ],
)
def test_lines_drawn_where_expected(p1, p2, on, off) -> None:
    img = np.zeros((200, 300, 3), np.uint8)
    out = annotate(img, None, [], [DrawLine("L", p1, p2)])
    assert img.max() == 0, "annotate must draw on a copy"
    for x, y in on:
        assert _is_line_colour(out[y, x]), (x, y)
    for x, y in off:
        assert out[y, x].max() == 0, (x, y)


def test_tracks_boxes_drawn() -> None:
    img = np.zeros((120, 160, 3), np.uint8)
    tracks = Tracks(np.array([5]), np.array([[20, 30, 80, 90]], np.float32), np.array([0.9], np.float32), np.array([1]))
    out = annotate(img, tracks, ["car", "truck"], [], {"L": {"truck": {"in": 2, "out": 0}}})
    assert out[60, 20].max() > 0 and out[90, 50].max() > 0  # left and bottom edges of the box
    assert out[60, 50].max() == 0  # inside stays untouched


def test_snapshot_grid() -> None:
    img = np.zeros((160, 200, 3), np.uint8)
    out = snapshot_image(img, [], grid=40)
    assert out[100, 40].max() > 0 and out[80, 100].max() > 0  # grid lines at x=40, y=80
    assert out[100, 60].max() == 0


def _width(img: np.ndarray, at: tuple[float, float], normal: tuple[int, int]) -> int:
    """Line-coloured pixels across the line at ``at`` (within 10 px either side)."""
    return sum(_is_line_colour(img[int(at[1] + k * normal[1]), int(at[0] + k * normal[0])]) for k in range(-10, 11))


@pytest.mark.parametrize(
    "p1, p2, in_side",
    [
        ((100, 0), (100, 199), (-1, 0)),  # drawn top to bottom: 'in' is the left (right-hand side of the arrow)
        ((299, 120), (0, 120), (0, -1)),  # drawn right to left: 'in' is up
    ],
)
def test_line_arrowhead_points_along_the_line_and_in_side_is_ticked(p1, p2, in_side) -> None:
    out = annotate(np.zeros((200, 300, 3), np.uint8), None, [], [DrawLine("L", p1, p2)])
    d = np.subtract(p2, p1) / np.hypot(*np.subtract(p2, p1))
    normal = (int(round(-d[1])), int(round(d[0])))
    tip = np.add(p1, 0.75 * np.subtract(p2, p1))  # three quarters along the (fully visible) line
    widths = [_width(out, tip - k * d, normal) for k in (2, 6, 10)]
    assert widths[0] < widths[1] < widths[2] and widths[2] >= 7, widths  # a head, wider behind its tip
    assert _width(out, np.add(p1, 0.2 * np.subtract(p2, p1)), normal) <= 4  # the plain line elsewhere
    mid = np.add(p1, p2) / 2.0
    tick = mid + 12 * np.array(in_side)
    assert _is_line_colour(out[int(tick[1]), int(tick[0])]), "the 'in' tick is on the right-hand side"
    away = mid - 12 * np.array(in_side)
    assert not _is_line_colour(out[int(away[1]), int(away[0])])


def _scene(tmp: Path) -> Path:
    from edgetally.demo.scene import SceneConfig, render_scene

    video = tmp / "scene.mp4"
    render_scene(SceneConfig(seconds=3, seed=7), video)
    return video


def test_snapshot_command(tmp_path: Path) -> None:
    import cv2

    out = tmp_path / "frame.jpg"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgetally",
            "snapshot",
            "--source",
            str(_scene(tmp_path)),
            "--line",
            "L=320,0,320,360",
            "--out",
            str(out),
            "--frame",
            "5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    img = cv2.imread(str(out))
    assert img.shape == (360, 640, 3)
    assert sum(_is_line_colour(img[y, 320]) for y in range(40, 360, 20)) >= 12  # the vertical line at x=320


def test_run_annotate(tmp_path: Path, demo_fp32_artifact: Path) -> None:
    import cv2

    out = tmp_path / "annotated.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgetally",
            "run",
            "--model",
            str(demo_fp32_artifact),
            "--source",
            str(_scene(tmp_path)),
            "--line",
            "L=320,0,320,360",
            "--annotate",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    cap = cv2.VideoCapture(str(out))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, img = cap.read()
    cap.release()
    assert ok and frames == summary["frames"] == 45
    assert sum(_is_line_colour(img[y, 320]) for y in range(40, 360, 20)) >= 10

"""Detection and tracking at different rates, through the public pipeline and `edge run`: the
detector sees some frames, optical flow carries the tracks over the others, and the counts hold.

The parts (flow, rate split, tracker rules, stitching) have their own tests in test_motion.py,
test_tracker.py and test_counting.py; figures over many clips: `python -m benchmarks.frame_rates`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetally import Detector, LineCounter, Pipeline, Tracker, open_source
from edgetally.cli import main
from edgetally.demo.scene import DEFAULT_LINE
from edgetally.hooks import RunStats, Sink
from edgetally.motion.rate import RatePlan, plan_rate


class _Stats(Sink):
    def __init__(self) -> None:
        self.seen: list[RunStats] = []

    def stats(self, stats: RunStats) -> None:
        self.seen.append(stats)


def _truth(video: Path) -> dict[str, dict[str, int]]:
    data = json.loads(video.with_suffix(".truth.json").read_text())
    return {cls: {d: n for d, n in dirs.items() if n} for cls, dirs in data["counts"].items() if any(dirs.values())}


@pytest.mark.parametrize(
    "plan, detected",
    [
        (plan_rate(detect_every=2), 60),
        (plan_rate(detect_every=3), 40),
        (plan_rate(detect_fps=5), 40),  # the scene is 15 fps: every third frame
        (plan_rate(detect_fps=3), 24),
    ],
)
def test_the_demo_scene_counts_its_truth_with_the_detector_on_some_frames(
    demo_fp32_artifact: Path, demo_scene: Path, plan: RatePlan, detected: int
) -> None:
    detector = Detector.from_artifact(demo_fp32_artifact)
    stats = _Stats()
    pipeline = Pipeline(
        open_source(str(demo_scene)),
        detector,
        Tracker(),
        [LineCounter("L", (320, 0), (320, 360), detector.labels)],
        sinks=[stats],
        rate=plan,
        stats_interval_s=0.0,
    )
    summary = pipeline.run()
    counts = {cls: {d: n for d, n in dirs.items() if n} for cls, dirs in summary.counts["L"].items()}
    assert counts == _truth(demo_scene)
    assert (summary.frames, summary.detected_frames) == (120, detected)
    out = summary.to_json()
    assert out["propagated_frames"] == 120 - detected and out["rate"] == plan.describe()
    assert out["camera_fps"] == pytest.approx(15.0, rel=0.02)
    last = stats.seen[-1].extra
    assert last["frames_detected_total"] == detected and last["frames_propagated_total"] == 120 - detected


def test_every_frame_is_the_default_and_reports_no_split(demo_fp32_artifact: Path, demo_scene: Path) -> None:
    detector = Detector.from_artifact(demo_fp32_artifact)
    stats = _Stats()
    summary = Pipeline(open_source(str(demo_scene)), detector, Tracker(), [], sinks=[stats]).run()
    assert summary.detected_frames == summary.frames == 120
    assert "rate" not in summary.to_json() and "frames_propagated_total" not in stats.seen[-1].extra


@pytest.mark.parametrize(
    "args, message",
    [
        (["--detect-fps", "0"], "--detect-fps: must be > 0 (or 'auto'), got '0'"),
        (["--detect-fps", "-2"], "--detect-fps: must be > 0"),
        (["--detect-fps", "fast"], "--detect-fps: expected a number of detections per second or 'auto', got 'fast'"),
        (["--detect-every", "0"], "--detect-every: expected a whole number of frames >= 1, got '0'"),
        (["--detect-every", "1.5"], "--detect-every: expected a whole number"),
        (["--detect-every", "2", "--detect-fps", "3"], "\n  detect_every and detect_fps: set one of them, not both"),
        (["--detect-fps", "40"], "above the source's 15 frames per second"),
    ],
)
def test_bad_rates_exit_2_with_the_reason(
    demo_fp32_artifact: Path, demo_scene: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc = main(["run", "--model", str(demo_fp32_artifact), "--source", str(demo_scene), *args])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_a_rate_in_the_config_file_is_used(demo_fp32_artifact: Path, demo_scene: Path, tmp_path: Path) -> None:
    x1, y1, x2, y2 = DEFAULT_LINE
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {demo_fp32_artifact}\nsource: {demo_scene}\ndetect_every: 4\n"
        f"lines:\n  - name: L\n    points: [[{x1}, {y1}], [{x2}, {y2}]]\n"
    )
    assert main(["run", "--config", str(config), "--summary-json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["detected_frames"] == 30 and summary["rate"] == "detector on every 4th frame"
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text().replace("detect_every: 4", "detect_every: many"))
    assert main(["validate-config", str(bad)]) == 2


def _traffic(artifact: Path, shared_data: Path, out: Path, *args: str) -> tuple[dict, int]:
    truth = json.loads((shared_data / "videos/traffic_road.counts.json").read_text())["counts"]
    assert (
        main(
            [
                "run",
                "--model",
                str(artifact),
                "--source",
                str(shared_data / "videos/traffic_road.mp4"),
                "--line",
                "L=320,0,320,360",
                "--classes",
                "car,truck,bus",
                "--summary-json",
                str(out),
                *args,
            ]
        )
        == 0
    )
    summary = json.loads(out.read_text())
    got = {d: sum(v.get(d, 0) for v in summary["counts"]["L"].values()) for d in ("in", "out")}
    return summary, sum(abs(got[d] - truth[d]["total"]) for d in ("in", "out"))


@pytest.mark.parametrize("args, detected", [(["--detect-fps", "5"], 100), (["--detect-fps", "3"], 60)])
def test_real_traffic_at_a_pi_s_detection_rate(
    yolox_fp32_artifact: Path, shared_data: Path, tmp_path: Path, args: list[str], detected: int
) -> None:
    """traffic_road.mp4 (24 fps, 26 hand-counted crossings) with the detector at 5 and 3 per second:
    within 2 crossings of the hand count (the full-rate run is within 1; a popular stack at full
    rate misses 9)."""
    summary, error = _traffic(yolox_fp32_artifact, shared_data, tmp_path / "s.json", *args)
    assert summary["frames"] == 480 and summary["detected_frames"] == detected
    assert summary["detect_fps"] == pytest.approx(detected / 20, rel=0.02)
    assert error <= 2, summary["counts"]


def test_a_live_camera_defaults_to_auto(demo_fp32_artifact: Path, tmp_path: Path) -> None:
    """A live source with no rate set: the detector runs whenever it is free and flow carries the
    frames it cannot take (a file, by default, is detected on every frame: see above)."""
    from mjpeg_server import MjpegServer

    camera = MjpegServer(size=(320, 192), fps=30).start()
    try:
        assert (
            main(
                [
                    "run",
                    "--model",
                    str(demo_fp32_artifact),
                    "--source",
                    camera.url,
                    "--max-frames",
                    "45",
                    "--summary-json",
                    str(tmp_path / "s.json"),
                ]
            )
            == 0
        )
    finally:
        camera.stop()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rate"] == "detector as fast as it keeps up (auto)"
    assert summary["frames"] == 45 and 1 <= summary["detected_frames"] <= 45
    assert summary["detected_frames"] + summary["propagated_frames"] == 45

"""The public library API: the README's example runs as written, the parts give the same counts by
hand as in the threaded Pipeline, and `import edgetally` stays cheap."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

import edgetally
from edgetally import Detector, FrameResult, JsonlEventSink, LineCounter, Pipeline, Tracker, open_source
from edgetally.hooks import Hook
from edgetally.sinks.jsonl import read_events


def readme_examples() -> list[str]:
    """The python blocks of the README's 'Use it as a library' section, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Use it as a library", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_library_examples_run_as_written(
    tmp_path: Path, demo_fp32_artifact: Path, demo_scene: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "artifacts").mkdir()
    os.symlink(demo_fp32_artifact, tmp_path / "artifacts" / "demo")
    os.symlink(demo_scene, tmp_path / "scene.mp4")
    monkeypatch.chdir(tmp_path)
    loop, pipeline = readme_examples()
    names: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(loop, names)
    printed = out.getvalue().splitlines()
    assert printed and all(
        re.match(r"CountEvent\(counter='L', kind='line', .*direction='(in|out)'", p) for p in printed
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(pipeline, names)
    written = read_events(tmp_path / "events.jsonl")
    # The README reuses the first example's line counter; its tracks are new ids, so it counts anew.
    assert len(written) >= len(printed) and "'L'" in out.getvalue()


def test_the_parts_by_hand_count_what_the_pipeline_counts(
    tmp_path: Path, demo_fp32_artifact: Path, demo_scene: Path
) -> None:
    tracker = Tracker()
    detector = Detector.from_artifact(demo_fp32_artifact, low_score=tracker.config.low_score)
    line = LineCounter("L", (320, 0), (320, 360), detector.labels)
    by_hand = []
    for frame in open_source(str(demo_scene)):
        tracks = tracker.update(detector(frame.image, with_low=True), frame.timestamp)
        by_hand += line.update(tracks, frame.index, frame.timestamp)
    by_hand += line.flush()
    sink = JsonlEventSink(tmp_path / "events.jsonl")
    pipeline = Pipeline(
        open_source(str(demo_scene)),
        detector,
        Tracker(),
        [LineCounter("L", (320, 0), (320, 360), detector.labels)],
        sinks=[sink],
    )
    summary = pipeline.run()
    threaded = read_events(tmp_path / "events.jsonl")
    assert [e.to_json() for e in by_hand] == threaded
    assert sum(n for per in summary.counts["L"].values() for n in per.values()) == len(threaded) > 0


def test_low_score_adds_weaker_boxes_and_reports_exactly_the_plain_ones(
    demo_fp32_artifact: Path, demo_scene: Path
) -> None:
    plain = Detector.from_artifact(demo_fp32_artifact)
    with_low = Detector.from_artifact(demo_fp32_artifact, low_score=0.05)
    weaker = 0
    for frame in islice(open_source(str(demo_scene)), 0, 120, 4):
        reference = plain(frame.image)
        everything = with_low(frame.image, with_low=True)
        for got in (with_low(frame.image), with_low.reported(everything), plain(frame.image, with_low=True)):
            np.testing.assert_array_equal(got.xyxy, reference.xyxy)
            np.testing.assert_array_equal(got.scores, reference.scores)
        assert everything.scores.min(initial=1.0) >= 0.05
        weaker += int((everything.scores < plain.score_threshold).sum())
        assert len(everything) == len(reference) + int((everything.scores < plain.score_threshold).sum())
    assert weaker > 0, "the demo scene has no boxes between 0.05 and the threshold: the test proves nothing"


@pytest.mark.parametrize(
    ("score_threshold", "tracker_floor", "reported_floor"),
    [
        (None, 0.1, 0.25),  # default: the tracker's second look gets the weak boxes, outputs do not
        (0.4, 0.4, 0.4),  # a threshold the user sets holds for the tracker too
        (0.05, 0.05, 0.05),
    ],
)
def test_edge_run_feeds_its_tracker_down_to_low_score_unless_told_a_threshold(
    tmp_path: Path,
    demo_fp32_artifact: Path,
    demo_scene: Path,
    score_threshold: float | None,
    tracker_floor: float,
    reported_floor: float,
) -> None:
    from edgetally.build import build_pipeline
    from edgetally.config import load_config

    config = tmp_path / "run.yaml"
    config.write_text(f"model: {demo_fp32_artifact}\nsource: {demo_scene}\nmax_frames: 60\n")
    settings = load_config(config, {} if score_threshold is None else {"score_threshold": score_threshold})
    fed, reported = [], []
    pipeline = build_pipeline(settings, sinks=[])
    update = pipeline.tracker.update
    pipeline.tracker.update = lambda d, t: fed.append(d.scores) or update(d, t)  # type: ignore[method-assign]
    pipeline.hooks.append(_Scores(reported))
    pipeline.run()
    fed_scores, reported_scores = np.concatenate(fed), np.concatenate(reported)
    assert fed_scores.min() >= tracker_floor and reported_scores.min() >= reported_floor
    assert fed_scores.min() < reported_floor + 0.1, "no box near the floor: the case proves nothing"
    assert (fed_scores < reported_floor).any() == (tracker_floor < reported_floor)


class _Scores(Hook):
    def __init__(self, into: list[np.ndarray]) -> None:
        self.into = into

    def frame(self, result: FrameResult) -> None:
        assert result.detections is not None
        self.into.append(result.detections.scores)


def test_import_is_cheap_and_every_public_name_resolves() -> None:
    probe = (
        "import sys, edgetally; heavy = {'cv2', 'onnxruntime', 'torch', 'paho'} & {m.split('.')[0] for m in "
        "sys.modules}; print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert sorted(edgetally.__all__) == sorted([*edgetally._EXPORTS, "__version__"])
    for name in edgetally.__all__:
        assert getattr(edgetally, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        edgetally.Nope  # noqa: B018

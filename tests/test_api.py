"""The public library API: the README's example runs as written, the parts give the same counts by
hand as in the threaded Pipeline, and `import edgetally` stays cheap."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

import edgetally
from edgetally import Detector, JsonlEventSink, LineCounter, Pipeline, Tracker, open_source
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
    detector = Detector.from_artifact(demo_fp32_artifact)
    tracker, line = Tracker(), LineCounter("L", (320, 0), (320, 360), detector.labels)
    by_hand = []
    for frame in open_source(str(demo_scene)):
        tracks = tracker.update(detector(frame.image), frame.timestamp)
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

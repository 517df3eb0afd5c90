"""What every row needs: a real artifact and scene, `edge run` in a subprocess, and a Row."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # the real fault openers, broker and disk helpers the tests use


@dataclass
class Row:
    fault: str
    outcome: str
    lost: str  # "0 lost", "3 of 7 lost", "+14 invented", "n/a"
    up: str  # "yes" | "no" | "n/a"


@dataclass
class Scene:
    """The repo's demo detector and a synthetic scene whose objects cross x=320."""

    artifact: Path
    video: Path
    line: str = "L=320,0,320,360"


def make_scene(work: Path, seconds: float = 8.0) -> Scene:
    from edgetally.converters.package import package_fp32
    from edgetally.demo.scene import SceneConfig, render_scene

    art = package_fp32(
        REPO / "models/demo/detector.onnx",
        work / "art",
        "yolox",
        (192, 320),
        REPO / "models/demo/labels.txt",
        decoder_options={"strides": (8, 16, 32), "nms_iou": 0.3},
    )
    video = work / "scene.mp4"
    render_scene(SceneConfig(seconds=seconds, seed=7), video)
    return Scene(art.directory, video)


RUN = "import sys; from edgetally.cli import main; sys.exit(main(sys.argv[1:]))"


def edge_run(
    scene: Scene,
    out: Path,
    *extra: str,
    script: str = RUN,
    script_args: tuple[str, ...] = (),
    source: Path | None = None,
) -> tuple[int, dict | None, list[dict], str]:
    """`edge run` (or ``script`` that ends in it) -> (exit code, summary or None, events, stderr)."""
    from edgetally.sinks.jsonl import read_events

    out.mkdir(parents=True, exist_ok=True)
    args = [
        "run",
        "--model",
        str(scene.artifact),
        "--source",
        str(source or scene.video),
        "--line",
        scene.line,
        "--summary-json",
        str(out / "summary.json"),
        "--events-out",
        str(out / "events.jsonl"),
        *extra,
    ]
    proc = subprocess.run(
        [sys.executable, "-c", script, *script_args, *args],
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    events = read_events(out / "events.jsonl") if (out / "events.jsonl").exists() else []
    return proc.returncode, summary, events, proc.stderr


def key(event: dict) -> tuple:
    return (event["counter"], event["class"], event["direction"])


def lost(reference: list[dict], got: list[dict]) -> str:
    """Compare count events with a reference run, per counter, class and direction (frame indices
    and track ids may differ between runs): what is missing, and what was invented."""
    ref, have = [key(e) for e in reference], [key(e) for e in got]
    missing = sum(max(0, ref.count(k) - have.count(k)) for k in set(ref))
    extra = sum(max(0, have.count(k) - ref.count(k)) for k in set(have))
    text = f"{missing} of {len(ref)} lost" if missing else "0 lost"
    return text + (f", +{extra} invented" if extra else "")


def exit_text(code: int) -> str:
    import signal

    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"

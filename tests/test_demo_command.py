"""`edge demo` end to end: scene -> INT8 conversion (converters) -> embedded broker -> runner over
MQTT -> counts vs exact ground truth. Real everything, a 20 s scene, --no-dashboard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgetally.demo.compare import compare_counts, format_table

REPO = Path(__file__).resolve().parents[1]


def _need(*modules: str) -> None:
    for module in modules:
        pytest.importorskip(module, reason=f"`edge demo` needs {module} (extras ort, convert, broker)")


@pytest.mark.parametrize("truth, counted, total_pct, abs_pct", [
    ({"car": {"in": 10, "out": 10}}, {"car": {"in": 10, "out": 10}}, 0.0, 0.0),
    ({"car": {"in": 10, "out": 10}}, {"car": {"in": 11, "out": 9}}, 0.0, 10.0),  # errors cancel in the total
    ({"car": {"in": 8, "out": 0}, "bus": {"in": 2, "out": 0}}, {"car": {"in": 9, "out": 0}}, 10.0, 30.0),
])
def test_compare_counts_table(truth, counted, total_pct, abs_pct) -> None:
    result = compare_counts(truth, counted, counted)
    assert result["total_error_pct"] == total_pct
    assert result["abs_error_pct"] == abs_pct
    assert result["mqtt_matches"] is True
    assert "total count error" in format_table(result)


def test_edge_demo_end_to_end(tmp_path: Path) -> None:
    _need("onnxruntime", "onnx", "amqtt", "paho.mqtt")
    out = tmp_path / "demo.json"
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "edgetally", "demo", "--seconds", "20", "--no-dashboard", "--work", str(work),
           "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "counted vs ground truth" in proc.stdout
    result = json.loads(out.read_text())
    truth = json.loads(next(work.glob("scene-s7-20s.truth.json")).read_text())
    assert result["truth_total"] == truth["total"]["in"] + truth["total"]["out"] >= 15
    assert result["total_error_pct"] <= 5.0, proc.stdout
    assert result["mqtt_matches"], "counts received over MQTT differ from the runner's"
    assert result["model"]["source"] in ("pytorch", "onnx") and not result["model"]["cached"]
    artifact = Path(result["model"]["artifact"])
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["precision"] == "int8"

    # Second run: the artifact is reused (keyed by the model hash), the scene too.
    proc2 = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    again = json.loads(out.read_text())
    assert again["model"]["cached"] and again["model"]["artifact"] == str(artifact)
    assert again["counted_total"] == result["counted_total"]


def test_demo_video_needs_model(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    proc = subprocess.run([sys.executable, "-m", "edgetally", "demo", "--video", str(video), "--work", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--video needs --model" in proc.stderr

"""`edge` command line: exit codes (0 ok, 1 runtime failure, 2 usage/config error) and clear messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgetally.cli import main


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def artifact(yolox_fp32_artifact: Path) -> Path:
    return yolox_fp32_artifact


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(list(args))
    return rc, capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "bench", "convert", "validate-config"):
        assert command in out


def test_missing_artifact_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_video: Path) -> None:
    rc, err = _run(capsys, "run", "--model", str(tmp_path / "nope"), "--source", str(tiny_video))
    assert rc == 2 and "not an artifact directory" in err


def test_corrupt_manifest_names_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_video: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"format": "onnx",\n  "runtime": }')
    rc, err = _run(capsys, "run", "--model", str(tmp_path), "--source", str(tiny_video))
    assert rc == 2 and "manifest.json:2: not valid JSON" in err


def test_corrupt_model_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path,
                                     tiny_video: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    model = next(broken.glob("*.onnx"))
    model.write_bytes(model.read_bytes()[:1000])
    rc, err = _run(capsys, "run", "--model", str(broken), "--source", str(tiny_video))
    assert rc == 2 and model.name in err and "does not match the manifest" in err


@pytest.mark.parametrize(
    ("extra", "code", "fragment"),
    [
        (["--line", "L320,0,320,360"], 2, "expected NAME=x1,y1,x2,y2"),
        (["--line", "L=1,2,3"], 2, "lines.0.points"),
        (["--classes", "car,unicorn"], 2, "unknown class name(s) ['unicorn']"),
        (["--threads", "0"], 2, "threads"),
    ],
)
def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str], artifact: Path, tiny_video: Path,
                                      extra: list[str], code: int, fragment: str) -> None:
    rc, err = _run(capsys, "run", "--model", str(artifact), "--source", str(tiny_video), *extra)
    assert rc == code and fragment in err


def test_missing_source_is_a_runtime_failure(capsys: pytest.CaptureFixture[str], artifact: Path, tmp_path: Path) -> None:
    rc, err = _run(capsys, "run", "--model", str(artifact), "--source", str(tmp_path / "missing.mp4"))
    assert rc == 1 and "missing.mp4" in err


def test_bad_config_file_reports_every_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: a\nsource: b\nthreads: x\nlines:\n  - name: L\n    points: 1,2\n")
    assert main(["validate-config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:3: threads:" in err and f"{cfg}:6: lines.0.points:" in err
    rc, err = _run(capsys, "run", "--config", str(cfg))
    assert rc == 2 and f"{cfg}:3: threads:" in err


def test_run_on_a_tiny_video_writes_a_summary(capsys: pytest.CaptureFixture[str], artifact: Path, tiny_video: Path,
                                              tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    rc = main(["run", "--model", str(artifact), "--source", str(tiny_video), "--line", "L=32,0,32,48",
               "--summary-json", str(summary)])
    assert rc == 0
    data = json.loads(summary.read_text())
    assert data["frames"] == 5 and data["counts"] == {"L": {}} and data["fps"] > 0

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


def test_missing_artifact_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_video: Path
) -> None:
    rc, err = _run(capsys, "run", "--model", str(tmp_path / "nope"), "--source", str(tiny_video))
    assert rc == 2 and "not an artifact directory" in err


def test_corrupt_manifest_names_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_video: Path
) -> None:
    (tmp_path / "manifest.json").write_text('{"format": "onnx",\n  "runtime": }')
    rc, err = _run(capsys, "run", "--model", str(tmp_path), "--source", str(tiny_video))
    assert rc == 2 and "manifest.json:2: not valid JSON" in err


def test_corrupt_model_file_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path, tiny_video: Path
) -> None:
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
        (["--line", "L=1,2,3"], 2, "--line #1 points: "),
        (["--classes", "car,unicorn"], 2, "unknown class name(s) ['unicorn']"),
        (["--threads", "0"], 2, "--threads: Input should be greater than or equal to 1"),
    ],
)
def test_bad_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], artifact: Path, tiny_video: Path, extra: list[str], code: int, fragment: str
) -> None:
    rc, err = _run(capsys, "run", "--model", str(artifact), "--source", str(tiny_video), *extra)
    assert rc == code and fragment in err


@pytest.mark.parametrize(
    ("source", "code", "fragment"),
    [
        ("missing.mp4", 2, "source not found"),  # a typo on the command line: usage error
        ("ftp://host/x.mp4", 2, "unsupported source scheme 'ftp'"),
        ("not-a-video.mp4", 1, "not a video OpenCV can decode"),  # the file is there; its content fails
    ],
)
def test_source_errors_and_their_exit_codes(
    capsys: pytest.CaptureFixture[str], artifact: Path, tmp_path: Path, source: str, code: int, fragment: str
) -> None:
    (tmp_path / "not-a-video.mp4").write_text("hello")
    path = source if "://" in source else str(tmp_path / source)
    rc, err = _run(capsys, "run", "--model", str(artifact), "--source", path, "--line", "L=1,0,1,9")
    assert rc == code and fragment in err and path.split("/")[-1] in err


def test_run_without_a_line_or_zone_warns(capsys: pytest.CaptureFixture[str], artifact: Path, tiny_video: Path) -> None:
    assert main(["run", "--model", str(artifact), "--source", str(tiny_video)]) == 0
    assert "warning: no --line or --zone" in capsys.readouterr().err
    assert main(["run", "--model", str(artifact), "--source", str(tiny_video), "--zone", "Z=0,0,9,0,9,9"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_validate_config_checks_the_model_path(
    capsys: pytest.CaptureFixture[str], artifact: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: cam.mp4\n# the artifact, relative to this file\nmodel: artifacts/nope\n")
    assert main(["validate-config", str(cfg)]) == 2
    assert f"{cfg}:3: model: {tmp_path / 'artifacts/nope'} is not an artifact directory (no such directory)" in (
        capsys.readouterr().err
    )
    assert main(["validate-config", "--no-model-check", str(cfg)]) == 0  # a config for another box
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts/nope").symlink_to(artifact)
    assert main(["validate-config", str(cfg)]) == 0
    assert "1 config file(s) OK" in capsys.readouterr().out


def test_bad_config_file_reports_every_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: a\nsource: b\nthreads: x\nlines:\n  - name: L\n    points: 1,2\n")
    assert main(["validate-config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:3: threads:" in err and f"{cfg}:6: lines.0.points:" in err
    rc, err = _run(capsys, "run", "--config", str(cfg))
    assert rc == 2 and f"{cfg}:3: threads:" in err


def test_run_on_a_tiny_video_writes_a_summary(
    capsys: pytest.CaptureFixture[str], artifact: Path, tiny_video: Path, tmp_path: Path
) -> None:
    summary = tmp_path / "s.json"
    rc = main(
        [
            "run",
            "--model",
            str(artifact),
            "--source",
            str(tiny_video),
            "--line",
            "L=32,0,32,48",
            "--summary-json",
            str(summary),
        ]
    )
    assert rc == 0 and "warning" not in capsys.readouterr().err
    data = json.loads(summary.read_text())
    assert data["frames"] == 5 and data["counts"] == {"L": {}} and data["fps"] > 0


def test_bench_prints_latencies_as_a_table(
    capsys: pytest.CaptureFixture[str], artifact: Path, tiny_video: Path
) -> None:
    assert main(["bench", "--model", str(artifact), "--source", str(tiny_video)]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("latency (ms)"))) :]
    assert table[0].split()[2:] == ["p50", "p90", "p95", "p99"]
    for row, cells in zip(table[1:4], (4, 4, 1), strict=True):  # inference only, inside the pipeline, whole frame
        values = [float(v) for v in row.split()[-cells:]]
        assert all(v > 0 for v in values), row
    assert not any("{" in x for x in lines)  # not a Python dict

"""`edge doctor` against a real artifact, a real listening socket as the broker, real files."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from edgetally.cli.doctor import doctor_command
from edgetally.cpu import describe_cpu
from edgetally.service.doctor import Check, check_cameras, format_table


@pytest.fixture(scope="module")
def artifact(yolox_fp32_artifact: Path) -> Path:
    return yolox_fp32_artifact


def config(tmp: Path, model: Path, source: str, broker_port: int) -> Path:
    path = tmp / "config.yaml"
    path.write_text(
        yaml.safe_dump({"model": str(model), "source": source, "mqtt": {"url": f"mqtt://127.0.0.1:{broker_port}"}})
    )
    return path


def doctor(*args: str) -> tuple[int, dict[str, Check]]:
    result = CliRunner().invoke(doctor_command, [*args, "--json"])
    checks = {c["name"]: Check(**c) for c in json.loads(result.output)}
    return result.exit_code, checks


def test_all_ok_with_a_listening_broker(artifact: Path, shared_data: Path, tmp_path: Path) -> None:
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen()
        code, checks = doctor(
            "--config",
            str(config(tmp_path, artifact, str(shared_data / "videos/traffic_road.mp4"), broker.getsockname()[1])),
        )
    assert code == 0, checks
    assert checks["mqtt broker"].status == "OK" and checks["artifact runs"].status == "OK"
    assert checks["runtime onnxruntime"].detail.startswith("onnxruntime 1.")
    assert checks["cpu"] == Check("cpu", "OK", str(describe_cpu()["summary"]))


def test_failures_are_reported_and_exit_1(artifact: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    model = broken / "yolox_nano.onnx"
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, checks = doctor("--config", str(config(tmp_path, broken, "/dev/video99", port)))
    assert code == 1
    assert checks["artifact"].status == "FAIL" and "sha256" in checks["artifact"].detail
    assert checks["mqtt broker"].status == "FAIL" and "unreachable" in checks["mqtt broker"].detail
    assert checks["camera"].status == "FAIL" and "/dev/video99 not found" in checks["camera"].detail


def test_invalid_config_fails_with_its_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: /x\nsource: a.mp4\nthreads: lots\n")
    code, checks = doctor("--config", str(bad))
    assert code == 1 and checks["config"].status == "FAIL" and "bad.yaml:3" in checks["config"].detail


def test_table_layout() -> None:
    table = format_table([Check("config", "OK", "a.yaml"), Check("mqtt broker", "FAIL", "refused")])
    assert table.splitlines() == ["OK    config       a.yaml", "FAIL  mqtt broker  refused"]


def test_picamera_source_without_picamera2_says_how_to_fix() -> None:
    try:
        import picamera2  # noqa: F401

        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    (check,) = check_cameras("picamera2:0")
    assert check.status == "FAIL" and "python3-picamera2" in check.detail

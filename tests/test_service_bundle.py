"""`edge bundle` + install.sh into a throwaway root with a stub systemctl: the installed `edge`
runs a real video from the created venv; re-running upgrades in place and keeps the state."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from service_helpers import REPO

from edgetally.errors import ConfigError, EdgeError
from edgetally.profiles import get_profile
from edgetally.service.bundle import make_bundle

pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum needed by install.sh")
STUB = """#!/bin/sh
echo "$@" >> "{log}"
case "$1" in is-active) exit 3;; esac
"""
# What the installed service sees: no PYTHONPATH (run with PYTHONPATH=<checkout>, the installed venv
# would import the checkout instead of its wheel).
BOARD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.mark.parametrize(
    "name, extra, dropins, site, pins",
    [
        ("rpi4", "ort", ["raspberrypi"], True, ["numpy<2", "opencv-python-headless<4.12"]),
        ("rpi5", "openvino", ["raspberrypi"], True, ["numpy<2", "opencv-python-headless<4.12"]),
        ("jetson", "ort", ["jetson"], True, []),  # JetPack's TensorRT comes from apt
        ("intel", "openvino", ["v4l2", "openvino"], False, []),
        ("coral", "litert", ["v4l2", "coral"], False, []),
        ("generic", "ort", ["v4l2"], False, []),
    ],
)
def test_profiles_say_how_to_deploy(name: str, extra: str, dropins: list[str], site: bool, pins: list[str]) -> None:
    p = get_profile(name)
    assert (p.extra, p.deploy.dropins, p.deploy.system_site_packages, p.deploy.pip_constraints) == (
        extra,
        dropins,
        site,
        pins,
    )
    assert all((REPO / "systemd/dropins" / f"{d}.conf").is_file() for d in p.deploy.dropins)


def test_a_profile_file_and_unknown_or_ambiguous_names(tmp_path: Path) -> None:
    path = tmp_path / "mybox.yaml"
    path.write_text(
        "name: mybox\nboard: my box\nruntime: litert\nformat: tflite\nprecision: int8\ninput_size: 320\n"
        "threads: 4\ncamera: {source: v4l2, width: 640, height: 480, fps: 30}\n"
    )
    p = get_profile(str(path))
    assert p.extra == "litert" and p.deploy.dropins == ["v4l2"] and p.deploy.pip_constraints == []
    with pytest.raises(ConfigError, match="unknown profile 'toaster'"):
        get_profile("toaster")
    with pytest.raises(ConfigError, match="ambiguous profile 'rpi'"):
        get_profile("rpi")


@pytest.fixture(scope="module")
def artifact(yolox_fp32_artifact: Path) -> Path:
    return yolox_fp32_artifact


def unpack(bundle: Path, where: Path) -> Path:
    with tarfile.open(bundle) as tar:
        tar.extractall(where)
    return where / "edgetally-bundle"


def install(bundle_dir: Path, root: Path, log: Path) -> subprocess.CompletedProcess[str]:
    stub = log.with_suffix(".sh")
    stub.write_text(STUB.format(log=log))
    stub.chmod(0o755)
    env = {**BOARD_ENV, "DESTDIR": str(root), "SYSTEMCTL": str(stub), "PYTHON": sys.executable}
    return subprocess.run([str(bundle_dir / "install.sh")], env=env, capture_output=True, text=True, timeout=300)


def reseal(bundle_dir: Path) -> None:
    """After editing a bundle's file, rewrite SHA256SUMS (what `edge bundle` does)."""
    files = sorted(p for p in bundle_dir.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    (bundle_dir / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(bundle_dir)}\n" for p in files)
    )


def test_bundle_install_run_upgrade_uninstall(artifact: Path, shared_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "board.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": "/opt/edgetally/model",
                "source": "/dev/video0",
                "device_id": "pole1",
                "lines": [{"name": "L", "points": [[320, 0], [320, 360]]}],
            }
        )
    )
    try:
        bundle = make_bundle("generic", artifact, config, tmp_path / "generic.tar.gz", with_deps=True)
    except EdgeError as exc:
        if "download" not in str(exc):
            raise
        pytest.skip(f"cannot download the runner's wheels (no package index reachable?): {str(exc)[:200]}")
    first = unpack(bundle, tmp_path / "a")
    assert sorted(p.name for p in (first / "systemd/dropins").iterdir()) == ["v4l2.conf"]
    root, log = tmp_path / "root", tmp_path / "systemctl.log"

    result = install(first, root, log)
    assert result.returncode == 0, result.stderr
    prefix, etc = root / "opt/edgetally", root / "etc"
    assert log.read_text().splitlines() == [
        "daemon-reload",
        "enable edgetally.service",
        "is-active --quiet edgetally.service",
        "start edgetally.service",
    ]
    unit = (etc / "systemd/system/edgetally.service").read_text()
    assert "ExecStart=/opt/edgetally/venv/bin/edge run --config /etc/edgetally/config.yaml" in unit
    assert (etc / "systemd/system/edgetally.service.d/board-v4l2.conf").is_file()
    assert (etc / "edgetally/mqtt-password").stat().st_mode & 0o777 == 0o600
    edge = prefix / "venv/bin/edge"
    # The installed wheel, not this checkout (run from elsewhere), with its package data (the profiles).
    where = subprocess.run(
        [str(prefix / "venv/bin/python"), "-c", "import edgetally; print(edgetally.__file__)"],
        cwd=tmp_path,
        env=BOARD_ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(prefix)), where
    profiles = subprocess.run(
        [str(edge), "profiles"], cwd=tmp_path, env=BOARD_ENV, capture_output=True, text=True, timeout=60
    )
    assert profiles.returncode == 0, profiles.stderr
    assert all(
        name in profiles.stdout
        for name in (
            "rpi4",
            "rpi5",
            "jetson-orin-nano-jp6",
            "intel-x86-openvino",
            "generic-onnxruntime",
            "coral-edgetpu",
        )
    )
    run = subprocess.run(
        [
            str(edge),
            "run",
            "--config",
            str(etc / "edgetally/config.yaml"),
            "--model",
            str(prefix / "model"),
            "--source",
            str(shared_data / "videos/traffic_road.mp4"),
            "--max-frames",
            "30",
        ],
        cwd=tmp_path,
        env=BOARD_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1])["frames"] == 30
    listing = subprocess.run(
        [str(prefix / "venv/bin/python"), "-m", "pip", "list", "--format=json"],
        env=BOARD_ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {p["name"].lower() for p in json.loads(listing)}
    assert "onnxruntime" in installed and not installed & {"onnx", "torch", "openvino", "pytest"}

    # the device runs: state and a local config edit must survive upgrades
    state = root / "var/lib/private/edgetally"
    state.mkdir(parents=True)
    (state / "outbox-pole1.sqlite").write_bytes(b"counters")
    first_id = (prefix / "share/installed").read_text().strip()
    assert install(first, root, log).returncode == 0  # same bundle again: nothing to rebuild
    assert (prefix / "share/installed").read_text().strip() == first_id

    second = unpack(bundle, tmp_path / "b")  # a newer bundle: another line, same wheels
    (second / "config.yaml").write_text(config.read_text().replace("name: L", "name: L2"))
    reseal(second)
    log.write_text("")
    (etc / "systemd/system/edgetally.service.d/override.conf").write_text("[Service]\nNice=5\n")
    result = install(second, root, log)
    assert result.returncode == 0, result.stderr
    second_id = (prefix / "share/installed").read_text().strip()
    assert second_id != first_id and os.readlink(prefix / "venv") == f"venvs/{second_id}"
    assert sorted(p.name for p in (prefix / "venvs").iterdir()) == sorted([first_id, second_id])  # rollback kept
    assert "name: L2" in (etc / "edgetally/config.yaml").read_text()  # unedited config follows the bundle
    assert (state / "outbox-pole1.sqlite").read_bytes() == b"counters"
    assert (etc / "systemd/system/edgetally.service.d/override.conf").is_file()
    assert (
        subprocess.run([str(prefix / "venv/bin/edge"), "--version"], env=BOARD_ENV, capture_output=True).returncode == 0
    )

    env = {**BOARD_ENV, "DESTDIR": str(root), "SYSTEMCTL": str(log.with_suffix(".sh"))}
    subprocess.run([str(second / "uninstall.sh")], env=env, check=True, capture_output=True)
    assert not prefix.exists() and not (etc / "systemd/system/edgetally.service").exists()
    assert (etc / "edgetally/config.yaml").is_file() and (state / "outbox-pole1.sqlite").is_file()

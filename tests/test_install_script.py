"""install.sh verifies the bundle before it reads anything and never executes bundle.env: a
command appended to it never runs, with or without a matching SHA256SUMS."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgetally.profiles import get_profile
from edgetally.service.bundle import _env_file

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum needed by install.sh")


def reseal(bundle: Path, skip: str | None = None) -> None:
    files = sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    (bundle / "SHA256SUMS").write_text(
        "".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(bundle)}\n"
            for p in files
            if str(p.relative_to(bundle)) != skip
        )
    )


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle's layout with the real scripts and the bundle.env `edge bundle` writes."""
    b = tmp_path / "edgetally-bundle"
    (b / "systemd/dropins").mkdir(parents=True)
    (b / "wheels").mkdir()
    for name in ("install.sh", "uninstall.sh"):
        shutil.copy2(REPO / "systemd" / name, b / name)
    shutil.copy2(REPO / "systemd/edgetally.service", b / "systemd")
    (b / "config.yaml").write_text("model: /opt/edgetally/model\nsource: /dev/video0\n")
    wheel = b / "wheels/edgetally-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    (b / "bundle.env").write_text(_env_file(get_profile("generic"), wheel, "0.1.0", offline=False))
    reseal(b)
    return b


def install(bundle: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # PYTHON points nowhere: a bundle that passes verification stops right after, at "not found".
    env = {**os.environ, "DESTDIR": str(tmp_path / "root"), "PYTHON": "/nonexistent/python3", "SYSTEMCTL": "true"}
    return subprocess.run(
        ["bash", str(bundle / "install.sh")], env=env, check=False, capture_output=True, text=True, timeout=60
    )


def test_a_good_bundle_passes_verification(bundle: Path, tmp_path: Path) -> None:
    result = install(bundle, tmp_path)
    assert result.returncode == 1 and "/nonexistent/python3 not found" in result.stderr


@pytest.mark.parametrize(
    "case, edit, sealed, error",
    [
        ("command appended, checksums stale", "\ntouch {marker}\n", False, "bundle checksums do not match"),
        ("command appended, checksums updated", "\ntouch {marker}\n", True, "bundle.env:9: expected KEY='value'"),
        ("command in a value", "VERSION='$(touch {marker})'\n", True, "bad value for VERSION"),
        ("unknown key", "PATH='/tmp'\n", True, "unknown key PATH"),
        ("bundle.env not in SHA256SUMS", "\ntouch {marker}\n", "skip", "SHA256SUMS does not list bundle.env"),
    ],
)
def test_bundle_env_is_never_executed(
    bundle: Path, tmp_path: Path, case: str, edit: str, sealed: bool | str, error: str
) -> None:
    marker = tmp_path / "pwned"
    with open(bundle / "bundle.env", "a") as fh:
        fh.write(edit.format(marker=marker))
    if sealed:
        reseal(bundle, skip="bundle.env" if sealed == "skip" else None)
    result = install(bundle, tmp_path)
    assert not marker.exists(), "install.sh executed data from bundle.env"
    assert result.returncode == 1 and error in result.stderr, result.stderr

"""The systemd unit and drop-ins as systemd itself reads them (systemd-analyze verify/security)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import REPO

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")
UNIT = REPO / "systemd" / "edgetally.service"
DROPINS = sorted((REPO / "systemd" / "dropins").glob("*.conf"))
EXEC = "/opt/edgetally/venv/bin/edge"


def verifiable(tmp: Path, extra: str = "") -> Path:
    """The unit with ExecStart pointing at a real executable (verify checks it exists), plus a
    drop-in appended: for the keys we use, a drop-in merges exactly like appended lines."""
    text = UNIT.read_text().replace(EXEC, sys.executable)
    path = tmp / "edgetally.service"
    path.write_text(text + ("\n" + extra if extra else ""))
    return path


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)


def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    result = verify(verifiable(tmp_path))
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@pytest.mark.parametrize("dropin", DROPINS, ids=[d.stem for d in DROPINS])
def test_unit_with_each_dropin_verifies_cleanly(tmp_path: Path, dropin: Path) -> None:
    result = verify(verifiable(tmp_path, dropin.read_text()))
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_verify_does_complain_about_a_bad_key(tmp_path: Path) -> None:
    result = verify(verifiable(tmp_path, "[Service]\nProtectSytem=strict\n"))
    assert "Unknown key" in result.stdout + result.stderr  # so the clean runs above mean something


def exposure(root: Path) -> float:
    out = subprocess.run(
        [ANALYZE, "security", "--offline=yes", f"--root={root}", "edgetally.service"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    match = re.search(r"Overall exposure level for edgetally\.service: ([0-9.]+)", out)
    assert match, out[-2000:]
    return float(match.group(1))


@pytest.mark.parametrize("dropin", [None, *DROPINS], ids=["main", *[d.stem for d in DROPINS]])
def test_security_exposure_at_most_2_5(tmp_path: Path, dropin: Path | None) -> None:
    unit_dir = tmp_path / "etc/systemd/system"
    (unit_dir / "edgetally.service.d").mkdir(parents=True)
    shutil.copy(UNIT, unit_dir)
    if dropin is not None:
        shutil.copy(dropin, unit_dir / "edgetally.service.d")
    score = exposure(tmp_path)
    print(f"\nexposure {dropin.stem if dropin else 'edgetally.service'}: {score}")
    assert score <= 2.5

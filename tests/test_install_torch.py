"""scripts/install_torch.sh takes torch's CPU build wherever an index offers it and refuses, with
the way out, when pip would fetch PyPI's multi-GB CUDA build. Run against a local find-links
folder of wheel files (pip reads only their names to list versions)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "versions, code, says",
    [
        (["2.13.0", "2.13.0+cpu"], 0, "ok: torch==2.13.0 resolves to 2.13.0+cpu"),
        (
            ["2.13.0", "2.14.0+cpu"],
            1,
            "EDGETALLY_TORCH_INDEX=https://download.pytorch.org/whl/cpu",
        ),  # PyPI's CUDA build
        (["2.12.0+cpu"], 1, "no index pip knows offers torch==2.13.0"),
    ],
)
def test_install_torch_check(tmp_path: Path, versions: list[str], code: int, says: str) -> None:
    if platform.system() != "Linux":
        pytest.skip("PyPI's torch is the CUDA build on Linux only")
    for version in versions:
        (tmp_path / f"torch-{version}-py3-none-any.whl").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "EDGETALLY_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path))
    proc = subprocess.run(
        ["bash", "scripts/install_torch.sh", "--check", sys.executable],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == code and says in proc.stdout + proc.stderr, proc.stdout + proc.stderr

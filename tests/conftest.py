"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared/data not found at {SHARED}: real models and videos are not available here")
    return SHARED


@pytest.fixture(scope="session")
def yolox_fp32_artifact(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared YOLOX-nano packaged by `edge convert` (FP32), once per test session. Read-only:
    a test that needs to damage it copies it first."""
    from edgetally.cli import main

    out = tmp_path_factory.mktemp("art") / "yolox_nano_fp32"
    rc = main(["convert", str(shared_data / "models/yolox_nano.onnx"), "--precision", "fp32", "--decoder", "yolox",
               "--input-size", "416", "--labels", "coco80", "--out", str(out)])
    assert rc == 0, "edge convert failed on the shared YOLOX-nano"
    return out


@pytest.fixture(scope="session", autouse=True)
def _state_directory(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The runner keeps its outbox and interval history in $STATE_DIRECTORY (else ~/.local/state):
    tests (and the runners they start as subprocesses) never write into the user's home."""
    import os

    if "STATE_DIRECTORY" not in os.environ:
        os.environ["STATE_DIRECTORY"] = str(tmp_path_factory.mktemp("state"))

"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pg_support import Postgres

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
    rc = main(
        [
            "convert",
            str(shared_data / "models/yolox_nano.onnx"),
            "--precision",
            "fp32",
            "--decoder",
            "yolox",
            "--input-size",
            "416",
            "--labels",
            "coco80",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, "edge convert failed on the shared YOLOX-nano"
    return out


@pytest.fixture(scope="session")
def demo_fp32_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed demo detector (models/demo) packaged FP32, once per test session. Read-only."""
    pytest.importorskip("onnx", reason="packaging the demo detector needs the convert extra")
    from edgetally.converters.package import package_fp32

    out = tmp_path_factory.mktemp("demo_art") / "art"
    return package_fp32(
        REPO / "models/demo/detector.onnx",
        out,
        "yolox",
        (192, 320),
        REPO / "models/demo/labels.txt",
        decoder_options={"strides": (8, 16, 32), "nms_iou": 0.3},
    ).directory


@pytest.fixture(scope="session")
def demo_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered 8 s synthetic traffic scene (640x360; its truth JSON beside it)."""
    from edgetally.demo.scene import DEFAULT_LINE, SceneConfig, render_scene

    video = tmp_path_factory.mktemp("scene") / "scene.mp4"
    scene = render_scene(SceneConfig(seconds=8, seed=5), video)
    scene.write_truth_json(video.with_suffix(".truth.json"), DEFAULT_LINE, "L")
    return video


@pytest.fixture(scope="session", autouse=True)
def _state_directory(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The runner keeps its outbox and interval history in $STATE_DIRECTORY (else ~/.local/state):
    tests (and the runners they start as subprocesses) never write into the user's home."""
    import os

    if "STATE_DIRECTORY" not in os.environ:
        os.environ["STATE_DIRECTORY"] = str(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def demo_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s synthetic scene (640x360, 15 fps) whose objects cross x=320: real crossings for the demo detector."""
    from edgetally.demo.scene import SceneConfig, render_scene

    video = tmp_path_factory.mktemp("demo-video") / "scene.mp4"
    render_scene(SceneConfig(seconds=4, seed=7), video)
    return video


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A real PostgreSQL server for the session (tests/pg_support.py); skips with the reason when absent."""
    from pg_support import Postgres, why_no_postgres

    reason = why_no_postgres()
    if reason:
        pytest.skip(reason)
    server = Postgres().start()
    server.create_database(server.test_db)
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(postgres_server: Postgres) -> str:
    """A fresh, empty schema for one test (its URL sets search_path): milliseconds, where a new
    database takes most of a second on a loaded machine."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(postgres_server.test_db), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{postgres_server.url(postgres_server.test_db)}?options=-csearch_path%3D{name}"

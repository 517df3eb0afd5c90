"""Validation that used to miss things: typed mqtt/tracker blocks, NaN and zero-area geometry,
non-UTF-8 and oversized configs, geometry outside the frame, manifests whose model path leaves
the artifact or whose names and dtypes do not match the model, image bombs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fault_sources import png_bomb

from edgetally.artifact import Artifact
from edgetally.capture import CaptureOptions, open_source
from edgetally.cli import main
from edgetally.config import RunSettings, geometry_warnings, validate_file
from edgetally.config.blocks import TrackerSettings, overridable_tracker_fields
from edgetally.errors import ArtifactError, CameraError
from edgetally.imagesize import image_size
from edgetally.runtimes import load_runtime

HEAD = "model: a\nsource: b\n"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("mqtt:\n  url: http://x\n", "cfg.yaml:4: mqtt.url: Value error, MQTT URL 'http://x': expected scheme mqtt://"),
        ("mqtt:\n  url: mqtt://broker\n  qos: 7\n", "cfg.yaml:5: mqtt.qos: Input should be 0, 1 or 2"),
        (
            "mqtt:\n  url: mqtt://broker\n  passwrd_file: /x\n",
            "cfg.yaml:5: mqtt.passwrd_file: Extra inputs are not permitted",
        ),
        (
            "tracker:\n  track_buffer_s: -5\n",
            "cfg.yaml:4: tracker.track_buffer_s: Input should be greater than or equal to 0",
        ),
        ("tracker:\n  min_hit: 2\n", "cfg.yaml:4: tracker.min_hit: Extra inputs are not permitted"),
        ("tracker:\n  min_hits: '3'\n", "cfg.yaml:4: tracker.min_hits: Input should be a valid integer"),
        (
            "tracker:\n  low_score: 0.6\n  high_score: 0.3\n",
            "cfg.yaml:3: tracker: Value error, need 0 <= low_score <= high_score",
        ),
        (
            "lines:\n  - name: L\n    points: [[.nan, 0], [10, 10]]\n",
            "cfg.yaml:5: lines.0.points: Value error, coordinates must be finite",
        ),
        (
            "lines:\n  - name: L\n    points: 0,0,inf,10\n",
            "cfg.yaml:5: lines.0.points: Value error, coordinates must be finite",
        ),
        (
            "zones:\n  - name: Z\n    polygon: [[0, 0], [50, 50], [100, 100]]\n",
            "cfg.yaml:5: zones.0.polygon: Value error, the zone encloses no area",
        ),
        ("zones:\n  - name: Z\n    polygon: [[0, 0], [0, 0], [0, 0], [0, 0]]\n", "the zone encloses no area"),
        (
            "zones:\n  - name: Z\n    polygon: " + ",".join(["0,0,1,0,1,1"] * 400) + "\n",
            "at most 1000 points, got 1200",
        ),
    ],
)
def test_validate_config_reports_file_line_key(tmp_path: Path, body: str, expected: str) -> None:
    (tmp_path / "cfg.yaml").write_text(HEAD + body)
    errors = validate_file(tmp_path / "cfg.yaml")
    assert any(expected in e for e in errors), errors


def test_good_blocks_stay_plain_dicts(tmp_path: Path) -> None:
    settings = RunSettings.model_validate(
        {
            "model": "a",
            "source": "b",
            "tracker": {"track_buffer_s": 3, "class_aware": True},
            "mqtt": {"url": "mqtts://broker", "qos": 0},
        }
    )
    assert settings.tracker == {"track_buffer_s": 3, "class_aware": True} and settings.mqtt == {
        "url": "mqtts://broker",
        "qos": 0,
    }


def test_tracker_settings_follow_tracker_config() -> None:
    assert set(TrackerSettings.model_fields) == overridable_tracker_fields()


def test_non_utf8_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cfg.yaml").write_bytes(HEAD.encode() + b"device_id: caf\xe9\n")
    expected = f"{tmp_path / 'cfg.yaml'}:3: not UTF-8 text (byte 0xe9 at offset 33); save the file as UTF-8"
    assert validate_file(tmp_path / "cfg.yaml") == [expected]
    assert main(["validate-config", str(tmp_path / "cfg.yaml")]) == 2 and "Traceback" not in capsys.readouterr().err


def test_oversized_config_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(
        HEAD
        + "zones:\n"
        + "".join(f"  - name: z{i}\n    polygon: [[0, 0], [9, 0], [9, 9], [0, 9]]\n" for i in range(40_000))
    )
    start = time.perf_counter()
    errors = validate_file(path)
    assert time.perf_counter() - start < 1.0 and "config is 2.5 MB; at most 1024 KB" in errors[0]


@pytest.mark.parametrize(
    "points, warning",
    [
        ([[320, 0], [320, 360]], None),
        ([[960, 0], [960, 1080]], "lies outside the 640x360 frame: it can never count"),
        ([[320, 0], [320, 1080]], "reaches outside the 640x360 frame: only 33% of it is in view"),
        ([[-50, -10], [-5, 400]], "lies outside"),
    ],
)
def test_geometry_warnings_at_the_first_frame(points: list, warning: str | None) -> None:
    settings = RunSettings.model_validate(
        {
            "model": "a",
            "source": "b",
            "lines": [{"name": "L", "points": points}],
            "zones": [{"name": "Z", "polygon": [[700, 0], [900, 0], [900, 100]]}],
        }
    )
    *lines, zone = geometry_warnings(settings, 640, 360)
    assert zone.startswith("zone 'Z' lies outside the 640x360 frame")
    assert len(lines) == (warning is not None) and all(warning in m for m in lines)


def _edited(artifact: Path, tmp_path: Path, **changes: object) -> Path:
    copy = tmp_path / "art"
    shutil.copytree(artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for dotted, value in changes.items():
        target = manifest
        *parents, key = dotted.split("__")
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[key] = value
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize("model_file", ["../detector.onnx", "/etc/passwd", "sub/../../x.onnx"])
def test_manifest_model_file_must_stay_inside_the_artifact(
    demo_fp32_artifact: Path, tmp_path: Path, model_file: str
) -> None:
    with pytest.raises(ArtifactError, match="model_file: Value error, must be a file name inside the artifact"):
        Artifact.load(_edited(demo_fp32_artifact, tmp_path, model_file=model_file))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"outputs__0__name": "out0"}, "manifest output(s) ['out0'] are not in the model"),
        ({"input__dtype": "uint8"}, "the manifest says input 'images' is uint8, the model takes float32"),
        ({"input__shape": [1, 3, 320, 320]}, "has shape [1, 3, 320, 320], the model's is [1, 3, 192, 320]"),
    ],
)
def test_manifest_that_does_not_match_the_model_is_refused_at_load(
    demo_fp32_artifact: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict,
    message: str,
    demo_video: Path,
) -> None:
    art = _edited(demo_fp32_artifact, tmp_path, **changes)
    with pytest.raises(ArtifactError) as info:
        load_runtime(Artifact.load(art, verify_hash=False))
    assert message in str(info.value)
    assert (
        main(["run", "--model", str(art), "--source", str(demo_video)]) == 2
    )  # before: a traceback at the first frame
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
def test_image_size_reads_headers(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"img{ext}"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (23, 37, 3), dtype=np.uint8))
    assert image_size(path) == (37, 23)


def test_image_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    png_bomb(folder / "b.png", 20000, 20000)
    with open_source(str(folder), CaptureOptions(isolate=False)) as src:
        assert next(src).image.shape == (8, 8, 3)
        with pytest.raises(CameraError, match="b.png: 20000x20000 = 400 MP is over the 50 MP limit"):
            next(src)


def test_video_frames_over_the_pixel_limit_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    with pytest.raises(CameraError, match="frames of 64x48 = 0 MP is over the 0 MP limit"):
        open_source(str(path), CaptureOptions(isolate=False, max_pixels=1000))

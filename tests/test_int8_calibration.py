"""Calibration sets: image folders and videos through the runner's Preprocessor; clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgetally.artifact import InputSpec
from edgetally.converters.accuracy.calibration import (
    MIN_COUNT,
    evenly_spaced,
    exclude_hashes,
    list_images,
    load_calibration,
)
from edgetally.errors import ConversionError
from edgetally.preprocess import Preprocessor

SPEC = InputSpec(name="images", shape=[1, 3, 64, 64])


def _write_images(folder: Path, count: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        image = np.full((48, 80, 3), (i * 17) % 255, np.uint8)
        image[:, : 10 + i] = 200
        path = folder / f"img{i:03d}.jpg"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [(10, 3, [0, 4, 9]), (5, 5, [0, 1, 2, 3, 4]), (3, 8, [0, 1, 2]), (9, 2, [0, 8])],
)
def test_evenly_spaced(total: int, count: int, expected: list[int]) -> None:
    assert evenly_spaced(total, count) == expected


def test_folder_calibration_is_the_runners_preprocessing(tmp_path: Path) -> None:
    paths = _write_images(tmp_path / "imgs", 12)
    calib = load_calibration(tmp_path / "imgs", SPEC, count=MIN_COUNT)
    assert calib.tensors.shape == (MIN_COUNT, 3, 64, 64) and calib.tensors.dtype == np.float32
    first = cv2.imread(str(paths[0]))
    expected, _ = Preprocessor(SPEC)(first)
    np.testing.assert_array_equal(calib.tensors[0], expected[0])
    assert calib.sources[0] == "img000.jpg" and len(set(calib.sha256)) == MIN_COUNT
    assert calib.provenance()["count"] == MIN_COUNT
    # the images not used for calibration are what evaluation may use
    assert len(exclude_hashes(list_images(tmp_path / "imgs"), calib)) == 12 - MIN_COUNT


def test_unreadable_images_are_skipped_and_reported(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs", 10)
    (tmp_path / "imgs" / "broken.jpg").write_bytes(b"not a jpeg")
    calib = load_calibration(tmp_path / "imgs", SPEC, count=11)
    assert calib.skipped == ("broken.jpg",) and len(calib) == 10


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: _write_images(p / "imgs", 3), "only 3 usable calibration images, need at least 8"),
        (lambda p: (p / "imgs").mkdir(), "no images"),
        (lambda p: None, "calibration source not found"),
        (lambda p: (p / "imgs").write_text("x"), "not an image folder or a video"),
    ],
)
def test_clear_errors(tmp_path: Path, setup, message: str) -> None:
    setup(tmp_path)
    with pytest.raises(ConversionError, match=message):
        load_calibration(tmp_path / "imgs", SPEC, count=16)


def test_video_frames_sampled_evenly(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (80, 48))
    for i in range(40):
        writer.write(np.full((48, 80, 3), i * 6, np.uint8))
    writer.release()
    calib = load_calibration(path, SPEC, count=8)
    assert len(calib) == 8
    assert calib.sources[0] == "clip.mp4#0" and calib.sources[-1] == "clip.mp4#39"
    # frames get brighter over the clip: the sampled tensors must too
    means = calib.tensors.reshape(8, -1).mean(axis=1)
    assert np.all(np.diff(means) > 0)

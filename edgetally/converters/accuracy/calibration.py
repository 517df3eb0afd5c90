"""Calibration data: images from a folder or frames sampled evenly from a video.

Every sample goes through ``edgetally.preprocess.Preprocessor`` -- the runner's own code -- so the
activation ranges the quantiser sees are exactly those the board will produce (a calibration
set preprocessed differently from deployment is a classic silent INT8 accuracy loss).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetally.artifact import InputSpec
from edgetally.errors import ConversionError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"})
DEFAULT_COUNT = 64
MIN_COUNT = 8


@dataclass(frozen=True)
class CalibrationSet:
    """Preprocessed calibration tensors (N, *input_shape[1:]) float32, with where each came from."""

    tensors: np.ndarray
    sources: tuple[str, ...]
    sha256: tuple[str, ...]  # content hash of each source image/frame (JPEG bytes or raw frame)
    origin: str
    skipped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.sources)

    def batches(self) -> Iterator[np.ndarray]:
        """Yield (1, ...) tensors one at a time, as the quantisers' data readers want them."""
        for index in range(len(self.tensors)):
            yield self.tensors[index : index + 1]

    def subset(self, count: int) -> CalibrationSet:
        """An evenly spread subset (for fast first attempts); the full set stays for repairs."""
        picks = evenly_spaced(len(self), count)
        return CalibrationSet(
            self.tensors[picks],
            tuple(self.sources[i] for i in picks),
            tuple(self.sha256[i] for i in picks),
            self.origin,
        )

    def provenance(self) -> dict:
        digest = hashlib.sha256("".join(sorted(self.sha256)).encode()).hexdigest()
        return {
            "origin": self.origin,
            "count": len(self),
            "set_sha256": digest,
            "sources": list(self.sources),
            "sha256": list(self.sha256),
            "skipped_unreadable": list(self.skipped),
        }


def evenly_spaced(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them if count >= total)."""
    if count >= total:
        return list(range(total))
    return [int(i) for i in np.linspace(0, total - 1, count).round().astype(int)]


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _progress(iterable, total: int, desc: str):
    from tqdm import tqdm  # a converter-only dependency

    # disable=None: a bar on a terminal, silence in CI logs
    return tqdm(iterable, total=total, desc=desc, unit="img", disable=None, leave=False)


def _from_folder(folder: Path, spec: InputSpec, count: int) -> CalibrationSet:
    import cv2

    from edgetally.preprocess import Preprocessor

    files = list_images(folder)
    if not files:
        raise ConversionError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) to calibrate with")
    chosen = [files[i] for i in evenly_spaced(len(files), count)]
    preprocess = Preprocessor(spec.model_copy(update={"dtype": "float32", "quantization": None}))
    tensors, sources, hashes, skipped = [], [], [], []
    for path in _progress(chosen, len(chosen), f"calibration {folder.name}"):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            skipped.append(path.name)
            continue
        tensor, _ = preprocess(image)
        tensors.append(tensor[0].copy())  # the preprocessor reuses its buffer
        sources.append(path.name)
        hashes.append(file_sha256(path))
    return _finish(tensors, sources, hashes, str(folder), skipped)


def _from_video(video: Path, spec: InputSpec, count: int) -> CalibrationSet:
    import cv2

    from edgetally.preprocess import Preprocessor

    capture = cv2.VideoCapture(str(video))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if not capture.isOpened() or total <= 0:
        raise ConversionError(f"{video}: cannot read the video (unsupported codec or not a video file)")
    wanted = set(evenly_spaced(total, count))
    preprocess = Preprocessor(spec.model_copy(update={"dtype": "float32", "quantization": None}))
    tensors, sources, hashes = [], [], []
    # Read sequentially rather than seeking: seeking is keyframe-inexact in many codecs.
    try:
        for index in _progress(range(total), total, f"calibration {video.name}"):
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                tensor, _ = preprocess(frame)
                tensors.append(tensor[0].copy())
                sources.append(f"{video.name}#{index}")
                hashes.append(hashlib.sha256(frame.tobytes()).hexdigest())
    finally:
        capture.release()
    return _finish(tensors, sources, hashes, str(video), [])


def _finish(tensors: list, sources: list, hashes: list, origin: str, skipped: list) -> CalibrationSet:
    if len(tensors) < MIN_COUNT:
        detail = f"; unreadable: {', '.join(skipped[:5])}" if skipped else ""
        raise ConversionError(
            f"{origin}: only {len(tensors)} usable calibration images, need at least {MIN_COUNT}{detail} "
            "(use frames from the deployment camera: hundreds are better)"
        )
    return CalibrationSet(np.stack(tensors), tuple(sources), tuple(hashes), origin, tuple(skipped))


def load_calibration(path: str | Path, spec: InputSpec, count: int = DEFAULT_COUNT) -> CalibrationSet:
    """Calibration tensors for an FP32 model input ``spec`` from an image folder or a video file.

    Images from a folder are picked evenly from the sorted file list, so a folder shared with
    evaluation splits deterministically (the evaluator drops images whose hash is in the set).
    """
    path = Path(path)
    if count < MIN_COUNT:
        raise ConversionError(f"calibration count {count} is too small; use at least {MIN_COUNT}")
    if path.is_dir():
        return _from_folder(path, spec, count)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return _from_video(path, spec, count)
    if not path.exists():
        raise ConversionError(f"{path}: calibration source not found (give an image folder or a video file)")
    raise ConversionError(f"{path}: not an image folder or a video ({', '.join(sorted(VIDEO_SUFFIXES))})")


def exclude_hashes(paths: Sequence[Path], calibration: CalibrationSet) -> list[Path]:
    """``paths`` minus the images used for calibration (by content hash): never evaluate on them."""
    used = set(calibration.sha256)
    return [p for p in paths if file_sha256(p) not in used]

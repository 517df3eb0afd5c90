"""Finite sources: a video file and a folder of images. Every frame, in order, no threads."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetally.capture.types import CaptureOptions, CaptureStats
from edgetally.errors import BadSourceError, CameraError
from edgetally.imagesize import image_size, too_big
from edgetally.structures import Frame

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_FOLDER_FPS = 1.0
_FALLBACK_FILE_FPS = 30.0


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders 'img2' before 'img10' (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name)
    key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts)
    return key + ((2, 0, name),)  # exact name last: a stable order for names equal but for case


class VideoFileSource:
    """Every frame of a video file, with timestamps from the file's timeline (seconds).

    The timestamp is the decoder's presentation time (CAP_PROP_POS_MSEC); when the container
    gives none, or it does not increase, the previous timestamp + 1/fps is used instead, so
    timestamps are always strictly increasing.

    A frame the decoder cannot read (a damaged file) is skipped and counted
    (``stats.corrupt_frames``): reading carries on with the next one. Only ``max_bad_frames``
    failures in a row (or as many as the container says are left) end the file.
    """

    is_live = False

    def __init__(self, path: str | Path, options: CaptureOptions | None = None) -> None:
        import cv2

        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise BadSourceError(f"video file not found: {self.path}")
        self._cap: cv2.VideoCapture | None = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise CameraError(f"cannot open video file {self.path}: not a video OpenCV can decode")
        opts = options or CaptureOptions()
        why = too_big(
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), opts.max_pixels
        )
        if why:
            self._cap.release()
            raise CameraError(f"video file {self.path}: frames of {why}")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.fps: float | None = fps if 0 < fps < 1000 else None
        self.frame_count: int | None = count if count > 0 else None
        self._dt = 1.0 / (self.fps or opts.fps or _FALLBACK_FILE_FPS)
        self._max_bad = opts.max_bad_frames
        self._index = 0
        self._corrupt = 0
        self._last_ts = -np.inf
        self._last_read: float | None = None
        self._resolution: tuple[int, int] | None = None
        self._pending: tuple[np.ndarray, float] | None = None
        self._pending = self._read_one()  # fail at open, not mid-pipeline, on an undecodable file
        if self._pending is None:
            self.close()
            raise CameraError(f"cannot read video file {self.path}: no decodable frames")

    def _read_one(self) -> tuple[np.ndarray, float] | None:
        import cv2

        if self._cap is None:
            return None
        image = self._next_decodable()
        if image is None:
            return None
        pos = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
        ts = pos if pos > self._last_ts else self._last_ts + self._dt
        if self._last_ts == -np.inf and not pos > 0:
            ts = 0.0
        self._last_ts = ts
        self._last_read = time.monotonic()
        self._resolution = (int(image.shape[1]), int(image.shape[0]))
        return image, ts

    def _next_decodable(self) -> np.ndarray | None:
        """The next frame the decoder can read, skipping (and counting) up to max_bad_frames in a
        row; failures only count as corrupt once a later frame reads (else it was the end)."""
        assert self._cap is not None
        failed = 0
        while True:
            ok, image = self._cap.read()
            if ok and image is not None:
                break
            failed += 1
            seen = self._index + self._corrupt + failed  # frames of the file gone through so far
            if failed > self._max_bad or (self.frame_count is not None and seen >= self.frame_count):
                return None
        if failed:
            self._corrupt += failed
            log.warning(
                "video %s: skipped %d undecodable frame(s) after frame %d (%d skipped so far)",
                self.path,
                failed,
                self._index,
                self._corrupt,
            )
        return image

    def __iter__(self) -> VideoFileSource:
        return self

    def __next__(self) -> Frame:
        item = self._pending if self._pending is not None else self._read_one()
        self._pending = None
        if item is None:
            self._finish()
            raise StopIteration
        frame = Frame(image=item[0], index=self._index, timestamp=item[1], source_name=self.name)
        self._index += 1
        return frame

    def _finish(self) -> None:
        if self._cap is not None and self.frame_count and self._index + self._corrupt < self.frame_count:
            log.warning(
                "video %s ended after %d frames (%d undecodable skipped); the container announced %d",
                self.path,
                self._index,
                self._corrupt,
                self.frame_count,
            )
        elif self._corrupt:
            log.warning(
                "video %s: %d frames read, %d undecodable frames skipped", self.path, self._index, self._corrupt
            )
        self.close()

    @property
    def stats(self) -> CaptureStats:
        age = None if self._last_read is None else time.monotonic() - self._last_read
        return CaptureStats(
            frames_read=self._index,
            frames_delivered=self._index,
            last_frame_age_s=age,
            resolution=self._resolution,
            connected=self._cap is not None,
            corrupt_frames=self._corrupt,
        )

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageFolderSource:
    """The image files of one folder (not recursive), in natural name order.

    Timestamps are index / fps (``options.fps``, default 1.0). ``source_name`` is the file name.
    Images are read without applying EXIF rotation, so pixel coordinates match the stored image
    (and the width/height that COCO-style label files record).
    """

    is_live = False

    def __init__(self, path: str | Path, options: CaptureOptions | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_dir():
            raise BadSourceError(f"image folder not found: {self.path}")
        files = [p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise CameraError(f"no image files in folder {self.path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        self.files: list[Path] = sorted(files, key=lambda p: natural_key(p.name))
        self._max_pixels = (options or CaptureOptions()).max_pixels
        self._fps = options.fps if options and options.fps else DEFAULT_FOLDER_FPS
        self.fps: float | None = self._fps
        self.frame_count: int | None = len(self.files)
        self._index = 0
        self._closed = False
        self._last_read: float | None = None
        self._resolution: tuple[int, int] | None = None

    def __iter__(self) -> ImageFolderSource:
        return self

    def __next__(self) -> Frame:
        import cv2

        if self._closed or self._index >= len(self.files):
            raise StopIteration
        path = self.files[self._index]
        size = image_size(path)
        why = too_big(*size, self._max_pixels) if size else None
        if why:  # refused from the header, before the decoder allocates it
            raise CameraError(f"image {path}: {why}")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise CameraError(f"cannot read image {path}: unreadable or not an image")
        frame = Frame(image=image, index=self._index, timestamp=self._index / self._fps, source_name=path.name)
        self._index += 1
        self._last_read = time.monotonic()
        self._resolution = (int(image.shape[1]), int(image.shape[0]))
        return frame

    @property
    def stats(self) -> CaptureStats:
        age = None if self._last_read is None else time.monotonic() - self._last_read
        return CaptureStats(
            frames_read=self._index,
            frames_delivered=self._index,
            last_frame_age_s=age,
            resolution=self._resolution,
            connected=not self._closed,
        )

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

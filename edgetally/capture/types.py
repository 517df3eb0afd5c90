"""Values shared by every frame source: options, a stats snapshot and the source protocol."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from edgetally.errors import ConfigError
from edgetally.imagesize import MAX_IMAGE_PIXELS
from edgetally.structures import Frame

if TYPE_CHECKING:
    from typing_extensions import Self


@dataclass(frozen=True)
class CaptureOptions:
    """How to open and supervise a source. Every field has a board-friendly default.

    width, height, fps, fourcc: requested camera mode (V4L2, Picamera2). Network streams and files
        are never resized. For an image folder ``fps`` sets the timeline (index / fps; default 1.0,
        because a folder is usually a set of independent stills); for a file without a frame rate
        it is the fallback timeline.
    reconnect_initial_s, reconnect_max_s: exponential back-off between reconnect attempts
        (doubles after every attempt that produced no frame, reset by a frame).
    frame_timeout_s: live watchdog: no new frame for this long -> drop the connection and
        reconnect (frigate's 20 s). Also the FFmpeg read timeout.
    open_timeout_s: how long one connection attempt may take before the watchdog gives up on it.
    max_reconnects: consecutive reconnect attempts without a frame before iteration raises
        CameraError; None = retry forever (what a 24/7 device wants).
    max_bad_frames: files: undecodable frames in a row that are skipped (and counted in
        ``CaptureStats.corrupt_frames``) before the rest of the file is treated as unreadable.
    isolate: decode in a child process (capture/isolated.py), so a codec that crashes, hangs or
        leaks ends or restarts the source instead of killing the runner.
    decoder_max_rss_mb: isolated decoding: a child above this resident size is leaking; it is
        restarted (live sources) or ends the file. None = no limit.
    max_pixels: files and image folders: frames larger than this are refused before they are
        decoded (a 20000 x 20000 PNG is 1.2 MB on disk and several GB in memory).
    decoder_timeout_s: isolated decoding: a child that sends nothing for this long (files: no
        frame) is hung; it is killed and restarted (live) or ends the file. Camera stalls are the
        live watchdog's business (frame_timeout_s): the child keeps sending heartbeats meanwhile.
    """

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 30.0
    frame_timeout_s: float = 20.0
    open_timeout_s: float = 10.0
    max_reconnects: int | None = None
    max_bad_frames: int = 25
    isolate: bool = True
    decoder_max_rss_mb: int | None = 1024
    decoder_timeout_s: float = 30.0
    max_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        for name in ("width", "height", "max_reconnects", "max_bad_frames", "decoder_max_rss_mb", "max_pixels"):
            value = getattr(self, name)
            minimum = 0 if name in ("max_reconnects", "max_bad_frames") else 1
            if value is not None and (not isinstance(value, int) or value < minimum):
                raise ConfigError(f"capture option {name}: expected a positive integer, got {value!r}")
        for name in (
            "reconnect_initial_s",
            "reconnect_max_s",
            "frame_timeout_s",
            "open_timeout_s",
            "decoder_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"capture option {name}: expected seconds > 0, got {getattr(self, name)!r}")
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"capture option fps: expected > 0, got {self.fps!r}")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ConfigError("capture option reconnect_max_s: must be >= reconnect_initial_s")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise ConfigError(f"capture option fourcc: expected 4 characters like 'MJPG', got {self.fourcc!r}")


@dataclass(frozen=True)
class CaptureStats:
    """A snapshot of a source's counters (safe to read from any thread).

    frames_read: frames decoded from the backend; frames_delivered: frames handed to the consumer;
    dropped: frames overwritten before the consumer took them (live only: drop-oldest);
    reconnects: reconnect attempts so far; last_frame_age_s: seconds since the newest frame was
    decoded (None before the first); resolution: (width, height) of the newest frame;
    resolution_changes: how often the size changed (after a reconnect); connected: a live
    connection is up (files: still has frames); corrupt_frames: undecodable frames skipped in a
    file; decoder_restarts: isolated decoding: decoder processes that crashed, hung or leaked
    (and were restarted, or ended the file); decoder_error: why the last one did.
    """

    frames_read: int = 0
    frames_delivered: int = 0
    dropped: int = 0
    reconnects: int = 0
    last_frame_age_s: float | None = None
    resolution: tuple[int, int] | None = None
    resolution_changes: int = 0
    connected: bool = False
    corrupt_frames: int = 0
    decoder_restarts: int = 0
    decoder_error: str | None = None


@runtime_checkable
class FrameSource(Protocol):
    """Iterate to get frames; ``close()`` from any thread ends the iteration.

    Files and folders yield every frame in order; live sources yield only the newest frame
    (index counts delivered frames). ``fps`` and ``frame_count`` are None when unknown.
    """

    name: str
    is_live: bool
    fps: float | None
    frame_count: int | None

    def __iter__(self) -> Iterator[Frame]: ...

    def __next__(self) -> Frame: ...

    @property
    def stats(self) -> CaptureStats: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

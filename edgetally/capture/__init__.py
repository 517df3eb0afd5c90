"""Frame sources: ``open_source(uri, options)`` for files, image folders and live cameras.

URIs: a video file path; an image folder; ``/dev/videoN`` (or any /dev path) or a bare camera
number (V4L2); ``rtsp://`` / ``rtsps://`` and ``http(s)://`` MJPEG (OpenCV FFmpeg, TCP);
``gst:<pipeline>`` (OpenCV GStreamer); ``picamera2:N`` (Raspberry Pi CSI; the module is
imported only then); ``file://`` paths.

Files and folders yield every frame in order (no thread); live sources run a reader thread and
yield only the newest frame (see live.py for the watchdog and reconnect rules). By default
(``CaptureOptions.isolate``) all of it runs in a child process (isolated.py), so a decoder that
crashes, hangs or leaks costs a restart of that process, not the runner.
"""

from __future__ import annotations

from collections.abc import Callable

from edgetally.capture.backends import Connect, SourceSpec, ffmpeg_connect, gst_connect, parse_uri, redact, v4l2_connect
from edgetally.capture.files import ImageFolderSource, VideoFileSource
from edgetally.capture.live import LiveSource
from edgetally.capture.types import CaptureOptions, CaptureStats, FrameSource

__all__ = [
    "CaptureOptions",
    "CaptureStats",
    "FrameSource",
    "ImageFolderSource",
    "LiveSource",
    "SourceSpec",
    "VideoFileSource",
    "open_direct",
    "open_source",
    "parse_uri",
    "redact",
]


def _picamera2(target: str, opts: CaptureOptions) -> Connect:
    from edgetally.capture.picamera import picamera2_connect  # needs the picamera2 module: only for picamera2:N

    return picamera2_connect(int(target), opts)


# Live source kinds (``parse_uri`` tells the kind) -> a connect factory for ``LiveSource``. Files and
# image folders are finite sources of their own. Adding a camera backend is one function here.
LIVE_BACKENDS: dict[str, Callable[[str, CaptureOptions], Connect]] = {
    "v4l2": v4l2_connect,
    "rtsp": ffmpeg_connect,
    "http": ffmpeg_connect,
    "gst": gst_connect,
    "picamera2": _picamera2,
}


def open_source(uri: str, options: CaptureOptions | None = None) -> FrameSource:
    """Open a frame source. Raises CameraError at once for what cannot get better by waiting
    (missing file, unreadable video, unknown scheme, GStreamer or picamera2 not installed);
    live connection failures are retried in the background (see CaptureOptions.max_reconnects).
    Decodes in a child process unless ``options.isolate`` is False."""
    opts = options or CaptureOptions()
    if opts.isolate:
        from edgetally.capture.isolated import IsolatedSource

        parse_uri(uri)  # a bad URI is a clear error here, without starting a process
        return IsolatedSource(uri, opts)
    return open_direct(uri, opts)


def open_direct(uri: str, options: CaptureOptions | None = None) -> FrameSource:
    """Open a frame source in this process (what the decoder process of an isolated source runs)."""
    opts = options or CaptureOptions()
    spec = parse_uri(uri)
    if spec.kind == "file":
        return VideoFileSource(spec.target, opts)
    if spec.kind == "folder":
        return ImageFolderSource(spec.target, opts)
    return LiveSource(spec.name, LIVE_BACKENDS[spec.kind](spec.target, opts), opts)

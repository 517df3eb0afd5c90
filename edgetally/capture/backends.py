"""URI parsing and the OpenCV backends behind live sources (V4L2, FFmpeg network, GStreamer)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from edgetally.capture.live import Connect, Reader
from edgetally.capture.types import CaptureOptions
from edgetally.errors import BadSourceError, CameraError

log = logging.getLogger(__name__)

Kind = Literal["file", "folder", "v4l2", "rtsp", "http", "gst", "picamera2"]
_NETWORK = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http"}
URI_HELP = (
    "expected a video file, an image folder, /dev/videoN or a camera index, rtsp(s)://..., "
    "http(s)://... (MJPEG), gst:<pipeline> or picamera2:N"
)
# Forced TCP: RTSP over UDP loses packets -> smeared frames on Wi-Fi. Timeouts are NOT put here:
# FFmpeg's 'timeout'/'stimeout' changed meaning across versions (4.x rtsp 'timeout' = listen
# mode); OpenCV's CAP_PROP_OPEN/READ_TIMEOUT_MSEC interrupt callback is version-independent.
FFMPEG_CAPTURE_OPTIONS = "rtsp_transport;tcp"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source URI. target: path / device / URL / pipeline / camera number as text."""

    kind: Kind
    target: str
    name: str


def redact(url: str) -> str:
    """The URL with any password replaced by '***' (names end up in logs and MQTT)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def parse_uri(uri: str) -> SourceSpec:
    """Classify a source URI. Raises CameraError for an unknown scheme or a missing path."""
    text = uri.strip()
    if text.startswith("gst:"):
        return SourceSpec("gst", text[4:].strip(), "gstreamer")
    if text.startswith("picamera2:"):
        num = text[len("picamera2:") :] or "0"
        if not num.isdigit():
            raise BadSourceError(f"bad source {uri!r}: picamera2:N needs a camera number, got {num!r}")
        return SourceSpec("picamera2", num, text)
    if re.fullmatch(r"\d+", text):
        return SourceSpec("v4l2", text, f"/dev/video{text}")
    if text.startswith("/dev/"):
        return SourceSpec("v4l2", text, text)
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*)://", text)
    if match:
        scheme = match.group(1).lower()
        if scheme == "file":
            text = urlsplit(text).path
        elif scheme in _NETWORK:
            return SourceSpec(_NETWORK[scheme], text, redact(text))  # type: ignore[arg-type]
        else:
            raise BadSourceError(f"unsupported source scheme {scheme!r} in {redact(uri)!r}: {URI_HELP}")
    path = Path(text).expanduser()
    if path.is_dir():
        return SourceSpec("folder", str(path), path.name)
    if path.exists():
        return SourceSpec("file", str(path), path.name)
    raise BadSourceError(f"source not found: {path} ({URI_HELP})")


def v4l2_connect(target: str, options: CaptureOptions) -> Connect:
    """A USB/CSI camera through V4L2. target: a camera number or a /dev path (by-id links work)."""

    def connect() -> Reader:
        import cv2

        cap = cv2.VideoCapture(v4l2_device(target), cv2.CAP_V4L2)
        if cap.isOpened():
            _apply_mode(cap, options, target)
        return cap

    return connect


def v4l2_device(target: str) -> int | str:
    """Camera number for OpenCV: '2', '/dev/video2' and a by-id link to it all give 2 (opening by
    index is what every OpenCV build supports); any other path is passed through."""
    if target.isdigit():
        return int(target)
    match = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(target))
    return int(match.group(1)) if match else target


def _apply_mode(cap: object, options: CaptureOptions, target: str) -> None:
    """Ask for the configured mode. FOURCC goes first: many UVC cameras reach 1080p only as MJPG."""
    import cv2

    requests = []
    if options.fourcc:
        requests.append((cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter.fourcc(*options.fourcc))))
    if options.width:
        requests.append((cv2.CAP_PROP_FRAME_WIDTH, float(options.width)))
    if options.height:
        requests.append((cv2.CAP_PROP_FRAME_HEIGHT, float(options.height)))
    if options.fps:
        requests.append((cv2.CAP_PROP_FPS, float(options.fps)))
    for prop, value in requests:
        cap.set(prop, value)  # type: ignore[attr-defined]
    got = (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))  # type: ignore[attr-defined]
    if (options.width and got[0] != options.width) or (options.height and got[1] != options.height):
        log.warning(
            "camera %s: asked for %sx%s, the driver chose %dx%d",
            target,
            options.width,
            options.height,
            int(got[0]),
            int(got[1]),
        )


def ffmpeg_connect(url: str, options: CaptureOptions) -> Connect:
    """RTSP / HTTP(S) MJPEG through OpenCV's FFmpeg backend, TCP, with open and read timeouts."""
    import cv2

    # Read by OpenCV at every open; set here, on the caller's thread, and never over a user value.
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_CAPTURE_OPTIONS)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(options.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(options.frame_timeout_s * 1000),
    ]

    def connect() -> Reader:
        return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)

    return connect


def gstreamer_available() -> bool:
    import cv2

    return re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) is not None


def gst_connect(pipeline: str, options: CaptureOptions) -> Connect:
    """A GStreamer pipeline (Jetson CSI: nvarguscamerasrc ! ... ). OpenCV needs an appsink at the
    end; one that keeps only the newest buffer is appended when the pipeline has none."""
    import cv2

    if not pipeline:
        raise BadSourceError("gst: source needs a pipeline, e.g. gst:videotestsrc ! videoconvert ! appsink")
    if not gstreamer_available():
        raise CameraError(
            "gst: sources need OpenCV built with GStreamer; this OpenCV "
            f"({cv2.__version__}) has none. Use the system OpenCV (e.g. apt install "
            "python3-opencv on Jetson) in a venv with --system-site-packages"
        )
    if "appsink" not in pipeline:
        pipeline += " ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"

    def connect() -> Reader:
        return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)

    return connect

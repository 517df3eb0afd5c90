"""Frame sources: files and folders frame-exact; live sources against a real MJPEG server on
loopback that is stopped, restarted at another size, and stalled during the test."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from mjpeg_server import MjpegServer

from edgetally.capture import (
    CaptureOptions,
    FrameSource,
    LiveSource,
    open_source,
    parse_uri,
    redact,
)
from edgetally.capture.backends import gstreamer_available
from edgetally.errors import CameraError, ConfigError

FAST = CaptureOptions(frame_timeout_s=1.0, open_timeout_s=1.0, reconnect_initial_s=0.1, reconnect_max_s=0.4)


def _write_video(path: Path, n: int, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), i * 10, np.uint8))  # grey level = frame number
    writer.release()


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


class _Consumer:
    """Iterates a live source on a thread, keeping (index, shape, timestamp) of every frame."""

    def __init__(self, source: FrameSource) -> None:
        self.frames: list[tuple[int, tuple[int, ...], float]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self.thread.start()

    def _run(self, source: FrameSource) -> None:
        try:
            for frame in source:
                self.frames.append((frame.index, frame.image.shape, frame.timestamp))
        except CameraError as exc:
            self.error = exc


# ----------------------------------------------------------------------------- files and folders
def test_video_file_yields_every_frame_in_order(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    _write_video(path, 20, fps=10.0)
    with open_source(str(path)) as src:
        assert isinstance(src, FrameSource) and not src.is_live
        assert (src.frame_count, src.fps) == (20, 10.0)
        frames = list(src)
    assert [f.index for f in frames] == list(range(20))
    assert [round(float(f.image.mean()) / 10) for f in frames] == list(range(20))  # decode order = write order
    assert np.allclose([f.timestamp for f in frames], np.arange(20) / 10.0, atol=1e-3)
    assert {f.source_name for f in frames} == {"clip.avi"} and frames[0].image.shape == (48, 64, 3)
    assert src.stats.frames_read == 20 and src.stats.resolution == (64, 48)


def test_shared_traffic_video_every_frame(shared_data: Path) -> None:
    with open_source(str(shared_data / "videos" / "traffic_road.mp4")) as src:
        assert src.frame_count == 480 and src.fps == pytest.approx(23.976, abs=1e-3)
        stamps = [(f.index, f.timestamp, f.image.shape) for f in src]
    assert [s[0] for s in stamps] == list(range(480))
    assert np.all(np.diff([s[1] for s in stamps]) > 0)
    assert stamps[-1][1] == pytest.approx(479 / 23.976, abs=0.05)
    assert {s[2] for s in stamps} == {(360, 640, 3)}


def test_image_folder_natural_order_names_and_timeline(tmp_path: Path) -> None:
    for value, name in [(10, "img10.png"), (2, "img2.png"), (1, "img1.jpg"), (3, "IMG3.JPEG")]:
        cv2.imwrite(str(tmp_path / name), np.full((8, 12, 3), value * 20, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    with open_source(str(tmp_path), CaptureOptions(fps=2.0)) as src:
        assert src.frame_count == 4 and not src.is_live
        frames = list(src)
    assert [f.source_name for f in frames] == ["img1.jpg", "img2.png", "IMG3.JPEG", "img10.png"]
    assert [round(float(f.image.mean()) / 20) for f in frames] == [1, 2, 3, 10]
    assert [f.timestamp for f in frames] == [0.0, 0.5, 1.0, 1.5]
    assert [f.timestamp for f in open_source(str(tmp_path))][:2] == [0.0, 1.0]  # default 1 fps


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: d / "missing.mp4", "missing.mp4"),
        (lambda d: (d / "bad.mp4").write_text("not a video") and d / "bad.mp4", "bad.mp4"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no image files in folder .*empty"),
    ],
    ids=["missing", "not-a-video", "empty-folder"],
)
def test_bad_paths_raise_camera_error_naming_the_path(tmp_path: Path, make, match: str) -> None:
    target = make(tmp_path)
    with pytest.raises(CameraError, match=match) as info:
        open_source(str(target))
    assert str(tmp_path) in str(info.value)


def test_unreadable_image_in_folder_names_the_file(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 truncated")
    src = open_source(str(tmp_path))
    assert next(src).source_name == "a.png"
    with pytest.raises(CameraError, match=r"cannot read image .*b\.jpg"):
        next(src)


# ----------------------------------------------------------------------------- URIs and options
@pytest.mark.parametrize(
    "uri, kind, target",
    [
        ("/dev/video2", "v4l2", "/dev/video2"),
        ("0", "v4l2", "0"),
        ("rtsp://cam.local:554/s1", "rtsp", "rtsp://cam.local:554/s1"),
        ("RTSPS://cam/s1", "rtsp", "RTSPS://cam/s1"),
        ("http://10.0.0.5/video.mjpg", "http", "http://10.0.0.5/video.mjpg"),
        ("https://cam/mjpg", "http", "https://cam/mjpg"),
        ("gst:nvarguscamerasrc ! appsink", "gst", "nvarguscamerasrc ! appsink"),
        ("picamera2:1", "picamera2", "1"),
    ],
)
def test_parse_uri_table(uri: str, kind: str, target: str) -> None:
    spec = parse_uri(uri)
    assert (spec.kind, spec.target) == (kind, target)


def test_parse_uri_errors_and_redaction(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="unsupported source scheme 'ftp'"):
        parse_uri("ftp://host/x.mp4")
    with pytest.raises(CameraError, match="camera number"):
        parse_uri("picamera2:front")
    assert parse_uri(f"file://{tmp_path}").kind == "folder"
    assert redact("rtsp://admin:s3cret@10.0.0.9:554/live") == "rtsp://admin:***@10.0.0.9:554/live"
    assert parse_uri("rtsp://admin:s3cret@cam/live").name == "rtsp://admin:***@cam/live"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"fps": 0.0},
        {"frame_timeout_s": 0},
        {"max_reconnects": -1},
        {"fourcc": "MJPEG"},
        {"reconnect_initial_s": 5.0, "reconnect_max_s": 1.0},
    ],
)
def test_capture_options_reject_bad_values(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        CaptureOptions(**kwargs)


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_gst_without_gstreamer_is_a_clear_error() -> None:
    with pytest.raises(CameraError, match="GStreamer"):
        open_source("gst:videotestsrc ! appsink")


def test_picamera2_missing_names_the_apt_package() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(CameraError, match="python3-picamera2"):
            open_source("picamera2:0")
    else:
        pytest.skip("picamera2 is installed here")


# ----------------------------------------------------------------------------- live: real MJPEG server
def test_mjpeg_reconnects_after_server_restart_and_notices_new_size(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgetally.capture")
    server = MjpegServer(size=(64, 48)).start()
    src = open_source(server.url, FAST)
    consumer = _Consumer(src)
    try:
        assert src.is_live and isinstance(src, FrameSource)
        assert _wait_for(lambda: len(consumer.frames) >= 5, 5), "no frames from the live server"
        server.stop()
        assert _wait_for(lambda: src.stats.reconnects >= 2, 5), "no reconnect attempts after the server stopped"
        assert not src.stats.connected
        server.start(size=(80, 60))
        assert _wait_for(lambda: consumer.frames and consumer.frames[-1][1] == (60, 80, 3), 5)
        stats = src.stats
        assert stats.resolution == (80, 60) and stats.resolution_changes == 1 and stats.connected
        assert stats.reconnects >= 2 and stats.last_frame_age_s is not None and stats.last_frame_age_s < 1.0
    finally:
        src.close()
        server.stop()
    consumer.thread.join(timeout=3)
    assert not consumer.thread.is_alive() and consumer.error is None  # close() ends the iteration
    assert [f[0] for f in consumer.frames] == list(range(len(consumer.frames)))
    assert np.all(np.diff([f[2] for f in consumer.frames]) > 0)
    messages = [r.getMessage() for r in caplog.records]
    assert any("reconnecting in" in m for m in messages)
    assert any("resolution changed from 64x48 to 80x60" in m for m in messages)


def test_mjpeg_stall_trips_the_watchdog_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edgetally.capture")
    server = MjpegServer().start()
    src = open_source(
        server.url,
        CaptureOptions(frame_timeout_s=0.6, open_timeout_s=0.6, reconnect_initial_s=0.1, reconnect_max_s=0.2),
    )
    consumer = _Consumer(src)
    try:
        assert _wait_for(lambda: len(consumer.frames) >= 3, 5)
        server.paused.set()  # connection stays open, frames stop: the silent stall
        assert _wait_for(lambda: src.stats.reconnects >= 1, 4)
        before = len(consumer.frames)
        server.paused.clear()
        assert _wait_for(lambda: len(consumer.frames) >= before + 5, 5), "frames did not resume after the stall"
    finally:
        src.close()
        server.stop()
    assert any("reconnecting in" in r.getMessage() for r in caplog.records)


def test_slow_consumer_gets_only_the_newest_frame() -> None:
    server = MjpegServer(fps=50).start()
    src = open_source(server.url, FAST)
    try:
        ages = []
        for frame in src:
            ages.append(time.monotonic() - frame.timestamp)
            if frame.index == 7:
                break
            time.sleep(0.1)  # a slow model: the camera runs 5x faster than we consume
        stats = src.stats
    finally:
        src.close()
        server.stop()
    assert stats.frames_delivered == 8 and stats.dropped >= 10
    assert stats.frames_read - stats.frames_delivered - stats.dropped in (0, 1)  # at most one frame waiting
    assert float(np.median(ages)) < 0.1  # fresh: a FIFO backlog would give a median near 0.3 s


def test_max_reconnects_exhausted_raises_camera_error() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    opts = CaptureOptions(open_timeout_s=0.5, reconnect_initial_s=0.05, reconnect_max_s=0.1, max_reconnects=2)
    src = open_source(f"http://127.0.0.1:{port}/x.mjpg", opts)
    try:
        with pytest.raises(CameraError, match="gave up after 2 reconnect"):
            next(src)
        assert src.stats.reconnects == 2
    finally:
        src.close()


# ----------------------------------------------------------------------------- live: a backend that hangs
class _HungReader:
    """A backend whose read() blocks forever after one frame (what a wedged driver does)."""

    def __init__(self, released: list[str], unblock: threading.Event) -> None:
        self._released, self._unblock, self._frames = released, unblock, 0

    def isOpened(self) -> bool:
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        self._frames += 1
        if self._frames == 1:
            return True, np.zeros((4, 6, 3), np.uint8)
        self._unblock.wait()
        return False, None

    def release(self) -> None:
        self._released.append("released")


def test_watchdog_abandons_a_hung_read_then_gives_up_when_the_backend_stays_wedged() -> None:
    released: list[str] = []
    unblock = threading.Event()
    opts = CaptureOptions(frame_timeout_s=0.2, reconnect_initial_s=0.02, reconnect_max_s=0.02)
    src = LiveSource("wedged", lambda: _HungReader(released, unblock), opts)
    frames: list = []
    with pytest.raises(CameraError, match="backend hung"):
        frames.extend(src)
    assert len(frames) >= 1 and src.stats.reconnects == 2  # each reconnect got a frame, then hung again
    assert released == []  # nobody released a capture under a blocked read
    unblock.set()
    src.close()
    assert _wait_for(lambda: len(released) == 3, 2)  # each session released its own capture


def test_v4l2_device_paths_map_to_camera_numbers(tmp_path: Path) -> None:
    from edgetally.capture.backends import v4l2_device

    link = tmp_path / "usb-cam-video-index0"
    link.symlink_to("/dev/video3")  # what /dev/v4l/by-id/ holds
    assert [v4l2_device(t) for t in ("0", "/dev/video12", str(link))] == [0, 12, 3]


def test_missing_v4l2_camera_retries_then_raises() -> None:
    opts = CaptureOptions(reconnect_initial_s=0.02, reconnect_max_s=0.02, max_reconnects=1)
    with (
        open_source("/dev/video99", opts) as src,
        pytest.raises(CameraError, match="/dev/video99: could not open the stream; gave up after 1"),
    ):
        next(src)


# ----------------------------------------------------------------------------- damaged files
def _damaged_mp4(tmp: Path, frames: int = 60, bad: tuple[int, ...] = (41,)) -> Path:
    """An MPEG-4 part 2 .mp4 whose frames ``bad`` have 300 bytes zeroed from their VOP start code
    (the decoder then fails on exactly those frames, and can go on after them)."""
    path = tmp / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for i in range(frames):
        img = np.full((120, 160, 3), (i * 5) % 255, np.uint8)
        img[80:] = rng.integers(0, 255, (40, 160, 3), dtype=np.uint8)
        writer.write(img)
    writer.release()
    data = bytearray(path.read_bytes())
    vops = [i for i in range(len(data) - 3) if data[i : i + 4] == b"\x00\x00\x01\xb6"]
    assert len(vops) == frames
    for k in bad:
        data[vops[k] : vops[k] + 300] = bytes(300)
    damaged = tmp / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
@pytest.mark.parametrize("bad, delivered", [((41,), 59), ((10, 11, 12, 30), 56), ((), 60)])
def test_damaged_video_skips_bad_frames_and_counts_them(
    tmp_path: Path, isolate: bool, bad: tuple[int, ...], delivered: int
) -> None:
    path = _damaged_mp4(tmp_path, bad=bad)
    with open_source(str(path), CaptureOptions(isolate=isolate)) as src:
        frames = list(src)
        stats = src.stats
    assert len(frames) == delivered and stats.corrupt_frames == len(bad)  # before: stopped at the first bad frame
    assert [f.index for f in frames] == list(range(delivered))
    good = [i / 10.0 for i in range(60) if i not in bad]  # each frame keeps its place on the file's timeline
    assert [f.timestamp for f in frames] == pytest.approx(good)


def test_too_many_bad_frames_in_a_row_end_the_file(tmp_path: Path) -> None:
    path = _damaged_mp4(tmp_path, bad=tuple(range(20, 30)))
    with open_source(str(path), CaptureOptions(isolate=False, max_bad_frames=5)) as src:
        assert len(list(src)) == 20 and src.stats.corrupt_frames == 0  # 10 in a row > 5: treated as the end

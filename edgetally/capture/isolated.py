"""A frame source that decodes in a child process (the way Frigate keeps ffmpeg out of its
detector process): a codec that corrupts its heap and aborts, segfaults, hangs or leaks takes
down only the child. To the pipeline it is one more FrameSource.

What happens when the decoder process fails (exit by a signal or an error, no frame for
``decoder_timeout_s``, resident memory above ``decoder_max_rss_mb``): it is logged with the
reason, counted in ``stats.decoder_restarts`` / ``stats.decoder_error``, and

- a file ends there: iteration stops as at the end of the file, so the run writes its summary
  and the events of every frame read;
- a live source starts a fresh decoder process after a back-off (``reconnect_initial_s``
  doubling to ``reconnect_max_s``) and carries on; frame indices keep counting.

Frames arrive through shared memory (isolated_child.py) and are copied out, so a Frame stays
valid however long the pipeline keeps it. Files prefetch a few frames (decode overlaps
inference); live sources ask for one frame at a time, so the frame handed over is the newest.
"""

from __future__ import annotations

import logging
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetally.capture.types import CaptureOptions, CaptureStats
from edgetally.errors import CameraError
from edgetally.structures import Frame

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

DIRECT_OPENER = "edgetally.capture:open_direct"
_POLL_S = 0.1
_RSS_CHECK_S = 1.0
_STOP_JOIN_S = 2.0


class DecoderFailed(Exception):
    """The decoder process died, hung or leaked (the message says which)."""


class IsolatedSource:
    """``open_source(uri, options)`` with ``options.isolate`` (the default) returns one of these.

    ``opener`` ('module:function', importable in the child) opens the real source there;
    tests pass one that makes the decoder really abort. Raises CameraError at construction
    for what open_source would raise (missing file, undecodable video, unknown scheme).
    """

    def __init__(self, uri: str, options: CaptureOptions | None = None, opener: str = DIRECT_OPENER) -> None:
        self._uri, self._opener = uri, opener
        self._opt = options or CaptureOptions()
        self._io = threading.Lock()  # __next__ vs close() from another thread
        self._closed = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._conn: Connection | None = None
        self._mem: mmap.mmap | None = None
        self._slot_bytes = 0
        self._ended = False
        self._delivered = 0
        self._last_frame: float | None = None
        self._child_stats = CaptureStats()
        self._restarts = 0
        self._streak = 0  # failures since the last frame: the back-off grows with it
        self._asked = False  # live: a frame was asked for and not yet received
        self._rss_checked = 0.0
        self._last_message = time.monotonic()
        self._error: str | None = None
        self._base = {"read": 0, "corrupt": 0, "dropped": 0, "reconnects": 0}  # earlier children's counts
        hello = self._start()
        self.name: str = hello[1]
        self.is_live: bool = hello[2]
        self.fps: float | None = hello[3]
        self.frame_count: int | None = hello[4]
        self._grant_all(hello[5])

    # ----------------------------------------------------------------- child lifecycle
    def _start(self) -> tuple[Any, ...]:
        """Start a decoder process and wait for its hello (or its error at open)."""
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgetally.capture.isolated_child", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._proc, self._sock, self._conn = proc, ours, Connection(os.dup(ours.fileno()))
        self._last_message = time.monotonic()
        level = logging.getLogger("edgetally").getEffectiveLevel()
        self._conn.send((self._uri, self._opt, self._opener, list(sys.path), level))
        deadline = time.monotonic() + self._opt.open_timeout_s + 30.0  # + interpreter start on a slow board
        while time.monotonic() < deadline and not self._closed.is_set():
            if self._conn.poll(_POLL_S):
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    break
                if message[0] == "hello":
                    return message  # type: ignore[no-any-return]
                if message[0] == "log":
                    _relay(message)
                if message[0] == "error":
                    self._stop_child()
                    raise CameraError(message[1])
            elif proc.poll() is not None:
                break
        why = _exit_reason(proc) if proc.poll() is not None else "no answer"
        self._stop_child()
        raise CameraError(f"source {self._uri}: the decoder process failed while opening it ({why})")

    def _grant_all(self, slots: int) -> None:
        """Files: every slot is free at start (the child decodes ahead); live: asked one by one."""
        if not self.is_live:
            for slot in range(slots):
                self._tell("free", slot)

    def _tell(self, *message: object) -> None:
        """Send to the decoder; a dead one is noticed (and reported) by the receiving side."""
        try:
            if self._conn is not None:
                self._conn.send(message)
        except (OSError, ValueError):
            pass

    def _stop_child(self, kill: bool = False) -> None:
        """Ask the decoder to stop (``kill``: a failed one is killed at once); release everything."""
        proc, conn = self._proc, self._conn
        self._tell("stop")
        if proc is not None:
            if kill and proc.poll() is None:
                proc.kill()
            try:
                proc.wait(_STOP_JOIN_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_STOP_JOIN_S)
        for closable in (conn, self._sock, self._mem):
            if closable is not None:
                closable.close()
        self._proc = self._conn = self._sock = self._mem = None

    # ----------------------------------------------------------------- consumer side
    def __iter__(self) -> IsolatedSource:
        return self

    def __next__(self) -> Frame:
        while True:
            if self._closed.is_set() or self._ended:
                raise StopIteration
            try:
                with self._io:
                    frame = self._receive()
            except DecoderFailed as exc:
                self._decoder_failed(str(exc))
                continue
            if frame is not None:
                return frame

    def _receive(self) -> Frame | None:
        """Handle messages for up to one poll step; a frame when one arrived."""
        if self._closed.is_set() or self._conn is None:
            return None
        if self.is_live and not self._asked:
            self._tell("free", 0)
            self._asked = True
        self._check_memory()
        if not self._conn.poll(_POLL_S):
            self._check_child()
            return None
        try:
            message = self._conn.recv()
        except (EOFError, OSError):
            raise DecoderFailed(_exit_reason(self._wait_exit())) from None
        self._last_message = time.monotonic()
        return self._handle(message)

    def _handle(self, message: tuple[Any, ...]) -> Frame | None:
        kind = message[0]
        if kind in ("frame", "inline"):
            return self._frame(message)
        if kind == "segment":
            self._map(int(message[1]) * int(message[2]))
            self._slot_bytes = int(message[1])
        elif kind == "stats":
            self._child_stats = message[1]
        elif kind == "log":
            _relay(message)
        elif kind == "end":
            self._child_stats = message[1]
            self._ended = True
            self._stop_child()
        elif kind == "error":
            if message[3] is not None:
                self._child_stats = message[3]
            if message[2]:  # a wedged backend or a decoder bug: treated like a crash of the process
                raise DecoderFailed(message[1])
            self._error = message[1]
            self._stop_child()
            raise CameraError(message[1])
        return None

    def _map(self, size: int) -> None:
        """Map the child's new ring (its memfd follows the "segment" message on the socket)."""
        assert self._sock is not None
        _, fds, _, _ = socket.recv_fds(self._sock, 1, 1)
        try:
            mem = mmap.mmap(fds[0], size)
        finally:
            for fd in fds:
                os.close(fd)
        if self._mem is not None:
            self._mem.close()
        self._mem = mem

    def _frame(self, message: tuple[Any, ...]) -> Frame:
        kind, slot, shape, stamp, source_name, stats = message[:6]
        if kind == "frame":
            assert self._mem is not None
            count = int(np.prod(shape))
            image = np.frombuffer(self._mem, np.uint8, count, slot * self._slot_bytes).reshape(shape).copy()
        else:  # no shared memory on this system: the pixels came in the message
            image = np.frombuffer(message[6], np.uint8).reshape(shape)
        if self.is_live:
            self._asked = False  # the next __next__ asks for the then newest frame
        else:
            self._tell("free", slot)
        if stats is not None:
            self._child_stats = stats
        self._last_frame = time.monotonic()
        self._streak = 0
        frame = Frame(image=image, index=self._delivered, timestamp=stamp, source_name=source_name)
        self._delivered += 1
        return frame

    def _check_child(self) -> None:
        """No message this step: is the decoder dead, hung or leaking?"""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is not None:
            raise DecoderFailed(_exit_reason(proc))
        waited = time.monotonic() - (self._last_frame if not self.is_live and self._last_frame else self._last_message)
        if waited > self._opt.decoder_timeout_s:
            raise DecoderFailed(f"no {'frame' if not self.is_live else 'sign of life'} for {waited:.1f} s (hung)")

    def _check_memory(self) -> None:
        """About once a second: a decoder above decoder_max_rss_mb is leaking."""
        now = time.monotonic()
        if self._proc is None or self._opt.decoder_max_rss_mb is None or now - self._rss_checked < _RSS_CHECK_S:
            return
        self._rss_checked = now
        rss = _rss_mb(self._proc.pid)
        if rss is not None and rss > self._opt.decoder_max_rss_mb:
            raise DecoderFailed(f"resident memory {rss:.0f} MB > {self._opt.decoder_max_rss_mb} MB (leaking)")

    def _wait_exit(self) -> subprocess.Popen[bytes] | None:
        """The socket closed: the process is exiting; give it a moment to say how."""
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(_STOP_JOIN_S)
            except subprocess.TimeoutExpired:
                pass
        return proc

    def _decoder_failed(self, reason: str) -> None:
        """Log; then the end of a file, or a fresh decoder process for a live source."""
        self._restarts += 1
        self._streak += 1
        self._error = reason
        c = self._child_stats  # the next process counts from zero: keep this one's counts
        for name, value in (
            ("read", c.frames_read),
            ("corrupt", c.corrupt_frames),
            ("dropped", c.dropped),
            ("reconnects", c.reconnects),
        ):
            self._base[name] += value
        self._child_stats = CaptureStats()
        with self._io:
            self._stop_child(kill=True)
        if not self.is_live:
            log.error(
                "source %s: the decoder process failed after %d frames: %s; ending the file here (the "
                "frames read so far are counted)",
                self.name,
                self._delivered,
                reason,
            )
            self._ended = True
            return
        delay = min(self._opt.reconnect_initial_s * 2 ** (self._streak - 1), self._opt.reconnect_max_s)
        log.error("source %s: the decoder process failed: %s; starting a new one in %.1f s", self.name, reason, delay)
        while not self._closed.wait(delay):
            try:
                with self._io:
                    self._start()
                    self._asked = False
                return
            except CameraError as exc:
                if self._closed.is_set():
                    return
                delay = min(delay * 2, self._opt.reconnect_max_s)
                log.error("source %s: %s; retrying in %.1f s", self.name, exc, delay)

    # ----------------------------------------------------------------- stats and close
    @property
    def stats(self) -> CaptureStats:
        c, b = self._child_stats, self._base
        age = None if self._last_frame is None else time.monotonic() - self._last_frame
        return CaptureStats(
            frames_read=b["read"] + c.frames_read,
            frames_delivered=self._delivered,
            dropped=b["dropped"] + c.dropped,
            reconnects=b["reconnects"] + c.reconnects + (self._restarts if self.is_live else 0),
            last_frame_age_s=age,
            resolution=c.resolution,
            resolution_changes=c.resolution_changes,
            connected=c.connected and self._proc is not None,
            corrupt_frames=b["corrupt"] + c.corrupt_frames,
            decoder_restarts=self._restarts,
            decoder_error=self._error,
        )

    def close(self) -> None:
        """Stop the decoder process (safe from any thread; waits for one poll step at most)."""
        self._closed.set()
        with self._io:
            self._stop_child()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _relay(message: tuple[Any, ...]) -> None:
    """Log a record of the decoder process as this process's own."""
    _, level, name, text = message
    logging.getLogger(name).log(level, "%s", text)


def _exit_reason(proc: subprocess.Popen[bytes] | None) -> str:
    code = None if proc is None else proc.poll()
    if code is None:
        return "the decoder process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the decoder process was killed by {name}"
    return f"the decoder process exited with status {code}"


def _rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MB (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    import resource

    return int(fields[1]) * resource.getpagesize() / 1e6

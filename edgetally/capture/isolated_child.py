"""The decoder process of an IsolatedSource: opens the real source and hands its frames over.

Started as ``python -m edgetally.capture.isolated_child FD`` (a fresh interpreter: nothing of
the runner's threads or runtime is inherited, and no user ``__main__`` is re-imported). FD is
one end of a socket pair; the first message says what to open. Frames go through a ring of
shared-memory slots (an anonymous memfd whose descriptor is passed over the socket, so nothing
can leak in /dev/shm even when both processes die); a bigger ring replaces it when the
resolution grows. Without memfd (not Linux) frames travel in the pipe itself.

    parent -> child  (uri, options, opener, sys.path, log level)    once, first
                     ("free", slot)  the slot may be written;   ("stop",)
    child -> parent  ("hello", name, is_live, fps, frame_count, slots)
                     ("segment", slot_bytes, slots) + the memfd (SCM_RIGHTS) right after it
                     ("frame", slot, shape, timestamp, source_name, stats or None)
                     ("inline", slot, shape, timestamp, source_name, stats, image_bytes)
                     ("stats", stats)                    heartbeat, every second
                     ("log", level, logger_name, message)  the child's log records
                     ("end", stats) | ("error", message, retryable, stats)
"""

from __future__ import annotations

import importlib
import logging
import mmap
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from edgetally.capture.types import CaptureOptions, FrameSource
from edgetally.errors import CameraError

HEARTBEAT_S = 1.0
STATS_S = 0.5
FILE_SLOTS = 4  # frames a file decodes ahead (decode overlaps inference); live sources use one


def resolve(opener: str) -> Callable[[str, CaptureOptions], FrameSource]:
    """'package.module:function' -> the function."""
    module, _, attr = opener.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


class _Channel:
    """The child's end of the socket: sends from two threads (frames, heartbeat) under one lock."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conn = Connection(os.dup(sock.fileno()))
        self.lock = threading.Lock()
        self.free: list[int] = []
        self.stopped = False

    def send(self, *message: Any, fd: int | None = None) -> None:
        with self.lock:
            self.conn.send(message)
            if fd is not None:
                socket.send_fds(self.sock, [b"m"], [fd])

    def take_slot(self) -> int | None:
        """Block until the parent frees a slot (None: told to stop, or the parent is gone)."""
        while not self.free and not self.stopped:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self.stopped = True
                break
            if message[0] == "free":
                self.free.append(int(message[1]))
            elif message[0] == "stop":
                self.stopped = True
        return None if self.stopped else self.free.pop(0)


class _Ring:
    """Shared-memory slots for frames; a new, bigger ring when a frame does not fit."""

    def __init__(self, channel: _Channel, slots: int) -> None:
        self.channel, self.slots = channel, slots
        self.mem: mmap.mmap | None = None
        self.slot_bytes = 0
        self.inline = not hasattr(os, "memfd_create")

    def put(self, slot: int, image: np.ndarray) -> bool:
        """Copy ``image`` into ``slot``; False when it must travel inline instead."""
        if not self.inline and image.nbytes > self.slot_bytes:
            self._grow(image.nbytes)
        if self.inline:
            return False
        assert self.mem is not None
        np.frombuffer(self.mem, np.uint8, image.nbytes, slot * self.slot_bytes)[:] = image.reshape(-1)
        return True

    def _grow(self, nbytes: int) -> None:
        try:
            fd = os.memfd_create("edgetally-frames", os.MFD_CLOEXEC)
            os.ftruncate(fd, nbytes * self.slots)
            mem = mmap.mmap(fd, nbytes * self.slots)
        except OSError:
            self.inline = True
            return
        if self.mem is not None:
            self.mem.close()
        self.mem, self.slot_bytes = mem, nbytes
        self.channel.send("segment", nbytes, self.slots, fd=fd)
        os.close(fd)


def child_main(sock: socket.socket) -> None:
    # Ctrl-C and systemd's SIGTERM reach the whole process group: the parent decides when we
    # stop (it says "stop", or its end closes), and the kernel kills us if it dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    channel = _Channel(sock)
    uri, options, opener, path, level = channel.conn.recv()
    sys.path[:] = path  # the parent's import path: its opener (a test's too) must import here
    root = logging.getLogger()
    root.handlers[:] = [_LogForwarder(channel)]
    root.setLevel(level)
    try:
        source = resolve(opener)(uri, options)
    except Exception as exc:
        channel.send("error", _message(exc), False, None)
        return
    slots = 1 if source.is_live else FILE_SLOTS
    channel.send("hello", source.name, source.is_live, source.fps, source.frame_count, slots)
    threading.Thread(target=_heartbeat, args=(channel, source), name="decoder-heartbeat", daemon=True).start()
    try:
        _pump(channel, _Ring(channel, slots), source)
    finally:
        channel.stopped = True
        source.close()


def _pump(channel: _Channel, ring: _Ring, source: FrameSource) -> None:
    """Wait for a free slot, THEN take the next frame: a live source hands over the newest frame
    at the moment the parent asks, not one grabbed before it was ready."""
    sent_stats = 0.0
    try:
        while (slot := channel.take_slot()) is not None:
            frame = next(source, None)
            if frame is None:
                break
            image = np.ascontiguousarray(frame.image)
            # Stats ride along with every live frame (a consistent snapshot with it) and twice a
            # second with a file's frames (pickling them costs at hundreds of frames a second).
            now = time.monotonic()
            fresh = source.is_live or now - sent_stats >= STATS_S
            stats, sent_stats = (source.stats, now) if fresh else (None, sent_stats)
            if ring.put(slot, image):
                channel.send("frame", slot, image.shape, frame.timestamp, frame.source_name, stats)
            else:
                channel.send("inline", slot, image.shape, frame.timestamp, frame.source_name, stats, image.tobytes())
        else:
            return  # told to stop
    except CameraError as exc:
        channel.send("error", str(exc), exc.retryable, source.stats)
        return
    except Exception as exc:
        channel.send("error", _message(exc), True, source.stats)
        return
    channel.send("end", source.stats)
    channel.take_slot()  # wait for "stop", so the parent reads "end" before the socket closes


class _LogForwarder(logging.Handler):
    """Log records go to the parent, which logs them as its own (same format, same journal)."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.channel.send("log", record.levelno, record.name, record.getMessage())
        except (OSError, ValueError):
            pass  # the parent is gone


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the heartbeat notices the parent is gone


def _heartbeat(channel: _Channel, source: FrameSource) -> None:
    parent = os.getppid()
    while not channel.stopped:
        threading.Event().wait(HEARTBEAT_S)
        if os.getppid() != parent:
            os._exit(0)  # the runner is gone; nobody reads our frames
        try:
            channel.send("stats", source.stats)
        except (OSError, ValueError):
            return


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CameraError) else f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    child_main(socket.socket(fileno=int(sys.argv[1])))

"""Live sources: a reader thread that keeps only the newest frame, a frame-age watchdog,
reconnect with exponential back-off, and a note when the resolution changes.

Threads (all daemon, all joined with a bounded wait in ``close()``):
- the supervisor: starts one *session* (connect + read loop) at a time, watches its frame age,
  and reconnects with back-off when it ends or stalls;
- one session thread per connection. A stalled session (a read blocked inside the backend, the
  silent RTSP stall of ultralytics#14286 / frigate#6502) is *abandoned*: it is told it is stale
  and releases its own capture whenever the backend lets go, while a fresh session starts.
  Capture objects are never touched from another thread (releasing a VideoCapture under a
  blocked read can crash). At most ``MAX_STUCK`` abandoned sessions may still be blocked; one
  more means the backend is wedged and only a process restart helps -> CameraError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edgetally.capture.types import CaptureOptions, CaptureStats
from edgetally.errors import CameraError
from edgetally.structures import Frame

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

MAX_STUCK = 2
CLOSE_JOIN_S = 2.0


class Reader(Protocol):
    """What a live backend must offer (cv2.VideoCapture's own method names)."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


Connect = Callable[[], Reader]


@dataclass
class _Session:
    """One connection attempt. ``progress`` is the monotonic time of its last sign of life."""

    generation: int
    progress: float
    opened: bool = False
    frames: int = 0
    reason: str = "stream ended"
    ended: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Frames are BGR uint8 (H, W, 3); convert the grey or BGRA frames some backends give."""
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    import cv2

    if image.dtype == np.uint8 and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise CameraError(f"unsupported frame layout: shape {image.shape}, dtype {image.dtype}")


class LiveSource:
    """A camera or stream. Iterating blocks until a frame newer than the last one delivered.

    ``connect()`` is called on a session thread for every (re)connection and returns a Reader.
    Timestamps are time.monotonic() when the frame left the backend; ``index`` counts delivered
    frames. Iteration ends when ``close()`` is called (from any thread) and raises CameraError
    when ``options.max_reconnects`` consecutive reconnects produced no frame.
    """

    is_live = True
    frame_count: int | None = None

    def __init__(self, name: str, connect: Connect, options: CaptureOptions | None = None) -> None:
        self.name = name
        self._opt = options or CaptureOptions()
        self.fps: float | None = self._opt.fps
        self._connect = connect
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._generation = 0
        self._image: np.ndarray | None = None
        self._stamp = 0.0
        self._fresh = False  # the slot holds a frame the consumer has not taken yet
        self._counts = {"read": 0, "delivered": 0, "dropped": 0, "reconnects": 0, "res_changes": 0}
        self._last_frame: float | None = None
        self._resolution: tuple[int, int] | None = None
        self._connected = False
        self._error: CameraError | None = None
        self._session: _Session | None = None
        self._abandoned: list[threading.Thread] = []
        self._poll_s = min(0.25, self._opt.frame_timeout_s / 4)
        self._supervisor = threading.Thread(target=self._supervise, name=f"capture:{name}", daemon=True)
        self._supervisor.start()

    # ----------------------------------------------------------------- consumer side
    def __iter__(self) -> LiveSource:
        return self

    def __next__(self) -> Frame:
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                if self._closed.is_set():
                    raise StopIteration
                if self._fresh and self._image is not None:
                    break
                self._cond.wait(0.5)
            image, stamp = self._image, self._stamp
            self._image, self._fresh = None, False
            index = self._counts["delivered"]
            self._counts["delivered"] += 1
        return Frame(image=image, index=index, timestamp=stamp, source_name=self.name)

    @property
    def stats(self) -> CaptureStats:
        with self._cond:
            c = self._counts
            age = None if self._last_frame is None else time.monotonic() - self._last_frame
            return CaptureStats(
                frames_read=c["read"],
                frames_delivered=c["delivered"],
                dropped=c["dropped"],
                reconnects=c["reconnects"],
                last_frame_age_s=age,
                resolution=self._resolution,
                resolution_changes=c["res_changes"],
                connected=self._connected,
            )

    def close(self) -> None:
        """Stop the threads; waits at most about CLOSE_JOIN_S for a backend to let go."""
        self._closed.set()
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
        deadline = time.monotonic() + CLOSE_JOIN_S
        threads = [self._supervisor] + self._abandoned
        if self._session is not None and self._session.thread is not None:
            threads.append(self._session.thread)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            log.warning(
                "camera %s: %d capture thread(s) still blocked in the backend after close "
                "(daemon threads; they exit when the backend returns)",
                self.name,
                len(stuck),
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- supervisor
    def _supervise(self) -> None:
        try:
            self._reconnect_loop()
        except Exception as exc:  # a bug here must end the iteration loudly, not hang the consumer
            log.exception("camera %s: capture supervisor failed", self.name)
            self._fail(f"camera {self.name}: capture supervisor failed: {exc}")

    def _reconnect_loop(self) -> None:
        opt = self._opt
        backoff, attempts = opt.reconnect_initial_s, 0  # attempts: consecutive, without a frame
        while not self._closed.is_set():
            session = self._start_session()
            self._watch(session)
            if self._closed.is_set() or self._error is not None:
                return
            if session.frames:
                backoff, attempts = opt.reconnect_initial_s, 0
            if opt.max_reconnects is not None and attempts >= opt.max_reconnects:
                self._fail(f"camera {self.name}: {session.reason}; gave up after {attempts} reconnect attempt(s)")
                return
            attempts += 1
            log.warning(
                "camera %s: %s; reconnecting in %.1f s (attempt %d%s)",
                self.name,
                session.reason,
                backoff,
                attempts,
                "" if opt.max_reconnects is None else f" of {opt.max_reconnects}",
            )
            if self._closed.wait(backoff):
                return
            backoff = min(backoff * 2.0, opt.reconnect_max_s)
            with self._cond:
                self._counts["reconnects"] += 1

    def _start_session(self) -> _Session:
        with self._cond:
            session = _Session(generation=self._generation, progress=time.monotonic())
        session.thread = threading.Thread(
            target=self._run_session, args=(session,), name=f"capture:{self.name}:{session.generation}", daemon=True
        )
        self._session = session
        session.thread.start()
        return session

    def _watch(self, session: _Session) -> None:
        """Return when the session ends, stalls past its timeout (then abandon it), or on close."""
        while not self._closed.is_set():
            if session.ended.wait(self._poll_s):
                return
            limit = self._opt.frame_timeout_s if session.opened else self._opt.open_timeout_s
            idle = time.monotonic() - session.progress
            if idle > limit:
                session.reason = (
                    f"no frame for {idle:.1f} s (watchdog)"
                    if session.opened
                    else f"no connection within {limit:.1f} s (watchdog)"
                )
                self._abandon(session)
                return

    def _abandon(self, session: _Session) -> None:
        with self._cond:
            self._generation += 1  # the session sees it is stale at its next chance
            self._connected = False
        self._abandoned = [t for t in self._abandoned if t.is_alive()]
        if session.thread is not None and session.thread.is_alive():
            self._abandoned.append(session.thread)
        if len(self._abandoned) > MAX_STUCK:
            self._fail(
                f"camera {self.name}: capture backend hung ({len(self._abandoned)} reader threads "
                "blocked); restart the process",
                retryable=True,
            )

    def _fail(self, message: str, retryable: bool = False) -> None:
        log.error("%s", message)
        with self._cond:
            self._error = CameraError(message, retryable)
            self._connected = False
            self._cond.notify_all()

    # ----------------------------------------------------------------- session thread
    def _current(self, session: _Session) -> bool:
        return not self._closed.is_set() and session.generation == self._generation

    def _run_session(self, session: _Session) -> None:
        reader: Reader | None = None
        try:
            reader = self._connect()
            if not reader.isOpened():
                session.reason = "could not open the stream"
                return
            session.opened, session.progress = True, time.monotonic()
            self._pump(reader, session)
        except Exception as exc:
            session.reason = f"{type(exc).__name__}: {exc}"
        finally:
            if reader is not None:
                _release(reader, self.name)
            with self._cond:
                if session.generation == self._generation:
                    self._connected = False
            session.ended.set()

    def _pump(self, reader: Reader, session: _Session) -> None:
        while self._current(session):
            ok, image = reader.read()
            now = time.monotonic()
            if not ok or image is None:
                session.reason = "stream ended or read failed"
                return
            if not self._publish(session, as_bgr(image), now):
                return

    def _publish(self, session: _Session, image: np.ndarray, now: float) -> bool:
        """Put the frame in the one-frame slot (overwriting an untaken one counts a drop)."""
        size = (int(image.shape[1]), int(image.shape[0]))
        with self._cond:
            if session.generation != self._generation or self._closed.is_set():
                return False
            previous, self._resolution = self._resolution, size
            if previous is not None and previous != size:
                self._counts["res_changes"] += 1
            self._counts["dropped"] += int(self._fresh)
            self._image, self._stamp, self._fresh = image, now, True
            self._counts["read"] += 1
            self._last_frame, self._connected = now, True
            self._cond.notify_all()
        if session.frames == 0:
            log.info("camera %s: receiving %dx%d frames", self.name, *size)
        if previous is not None and previous != size:
            log.warning("camera %s: resolution changed from %dx%d to %dx%d", self.name, *previous, *size)
        session.frames += 1
        session.progress = now
        return True


def _release(reader: Reader, name: str) -> None:
    try:
        reader.release()
    except Exception:  # a failing release must not keep the session from ending
        log.exception("camera %s: releasing the capture failed", name)

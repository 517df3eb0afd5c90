"""sd_notify(3) without libsystemd: one AF_UNIX datagram per message to $NOTIFY_SOCKET.

``SystemdNotifier`` is a pipeline hook (called from the frame loop) that tells systemd:

- ``READY=1`` after the first frame went through the model (warm) and the counters, not at start;
- ``WATCHDOG=1`` at most every WATCHDOG_USEC/2, only from the frame loop (so only while frames
  flow) and only while the sinks' workers are alive: a stalled camera or a dead publisher stops
  the pings and systemd restarts the service after ``WatchdogSec=``;
- ``STATUS=`` with fps, inference time and counts every ``status_interval_s``;
- ``RELOADING=1`` + ``MONOTONIC_USEC`` when SIGHUP arrives and ``READY=1`` once the frame loop has
  applied the reload (``wrap_reload``); ``STOPPING=1`` when the loop ends.
Outside systemd (no $NOTIFY_SOCKET) every call is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from edgetally.hooks import Hook, RunContext
from edgetally.structures import FrameResult

log = logging.getLogger(__name__)
T = TypeVar("T")


def notify_address(env: Mapping[str, str] | None = None) -> str | None:
    """$NOTIFY_SOCKET as a socket address: '@name' is Linux's abstract namespace ('\\0name')."""
    value = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET %r: only AF_UNIX paths and @abstract names are supported", value)
    return None


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between pings (half of WATCHDOG_USEC, as sd_watchdog_enabled advises), or None when
    the watchdog is off or meant for another process (WATCHDOG_PID)."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    owner = env.get("WATCHDOG_PID")
    if usec <= 0 or (owner and owner.isdigit() and int(owner) != (os.getpid() if pid is None else pid)):
        return None
    return usec / 2e6


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: what systemd wants in MONOTONIC_USEC= with RELOADING=1."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notify:
    """Sends sd_notify messages; a no-op without an address. Send errors are logged once and never
    raised: the frame loop must not die because systemd went away."""

    def __init__(self, address: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.address = address if address is not None else notify_address(env)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send 'KEY=value' lines as one datagram; True when it was sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
            return True
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify to %r failed: %s", self.address.replace("\0", "@"), exc)
                self._warned = True
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def status_line(result: FrameResult, totals: dict[str, dict[str, dict[str, int]]], fps: float) -> str:
    """'12.3 fps, infer 8.1 ms, 480 frames; L: in 9 out 17' (counts summed over classes)."""
    infer = result.infer_ms or 0.0
    parts = []
    for counter, per_class in totals.items():
        dirs: dict[str, int] = {}
        for values in per_class.values():
            for direction, n in values.items():
                dirs[direction] = dirs.get(direction, 0) + n
        parts.append(
            f"{counter}: " + " ".join(f"{d} {n}" for d, n in sorted(dirs.items())) if dirs else f"{counter}: 0"
        )
    counts = "; ".join(parts) if parts else "no counters"
    return f"{fps:.1f} fps, infer {infer:.1f} ms, {result.frames} frames; {counts}"[:400]


class SystemdNotifier(Hook):
    """A pipeline hook speaking sd_notify. The watchdog is not pinged while the run's ``health``
    reports a problem (a sink's worker died)."""

    def __init__(
        self,
        notify: Notify | None = None,
        *,
        status_interval_s: float = 5.0,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notify = notify if notify is not None else Notify(env=env)
        self.watchdog_s = watchdog_interval(env)
        self.status_interval_s = status_interval_s
        self.clock = clock
        self.ready = False
        self._context: RunContext | None = None
        self._reload_done = False
        self._last_ping = self._last_status = 0.0
        self._status_frames = 0
        self._unhealthy: str | None = None

    def open(self, context: RunContext) -> None:
        self._context = context

    def frame(self, result: FrameResult) -> None:
        now = self.clock()
        totals = self._context.totals.values if self._context is not None else {}
        if not self.ready:
            self.ready = True
            self._last_status, self._status_frames = now, result.frames
            self.notify.send("READY=1", "STATUS=" + status_line(result, totals, 0.0))
            log.info("ready: first frame processed")
        elif self._reload_done:
            self._reload_done = False
            self.notify.send("READY=1", "STATUS=reloaded")
        self._watchdog(now)
        if now - self._last_status >= self.status_interval_s:
            fps = (result.frames - self._status_frames) / max(now - self._last_status, 1e-6)
            self._last_status, self._status_frames = now, result.frames
            self.notify.send("STATUS=" + status_line(result, totals, fps))

    def _watchdog(self, now: float) -> None:
        if self.watchdog_s is None or now - self._last_ping < self.watchdog_s:
            return
        problems = self._context.health() if self._context is not None else []
        if problems:
            reason = "; ".join(problems)
            if reason != self._unhealthy:
                log.error("not pinging the systemd watchdog: %s", reason)
                self.notify.send(f"STATUS=unhealthy: {reason}")
            self._unhealthy = reason
            return
        self._unhealthy = None
        self._last_ping = now
        self.notify.send("WATCHDOG=1")

    def close(self, final_state: str = "stopped") -> None:
        self.notify.send("STOPPING=1", f"STATUS=stopping ({final_state})")

    def reloading(self) -> None:
        """Call from the SIGHUP handler, before ``pipeline.request({'cmd': 'reload'})``."""
        self.notify.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", "STATUS=reloading")

    def wrap_reload(self, load: Callable[[], T]) -> Callable[[], T]:
        """Wrap the settings loader the pipeline calls while applying a reload; the next frame then
        sends READY=1, whether the new settings were accepted or rejected (the service keeps
        counting either way, and systemd must leave the 'reloading' state)."""

        def load_and_mark() -> T:
            try:
                return load()
            finally:
                self._reload_done = True

        return load_and_mark

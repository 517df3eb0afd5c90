"""Real sockets for the service tests: a NOTIFY_SOCKET listener (what systemd does) and a helper
that starts the harness or `edge` as a subprocess the way systemd would."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class NotifyListener:
    """Binds an abstract AF_UNIX datagram socket and records (monotonic time, message) pairs."""

    def __init__(self) -> None:
        self.name = f"@edgetally-test-{uuid.uuid4().hex[:12]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def lines(self) -> list[tuple[float, str]]:
        """Every 'KEY=value' line with the time its datagram arrived."""
        with self._lock:
            return [(t, line) for t, msg in self.messages for line in msg.split("\n")]

    def wait_for(self, line: str, after: float = 0.0, timeout: float = 30.0) -> float:
        """Time the first matching line arrived after ``after``; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, got in self.lines():
                if t >= after and (got == line or (line.endswith("=") and got.startswith(line))):
                    return t
            time.sleep(0.02)
        raise AssertionError(f"no {line!r} within {timeout} s; got {[m for _, m in self.lines()][-20:]}")

    def count(self, line: str, start: float, end: float) -> int:
        return sum(1 for t, got in self.lines() if start <= t <= end and got == line)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def service_env(listener: NotifyListener, watchdog_usec: int | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "NOTIFY_SOCKET": listener.name, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("WATCHDOG_PID", None)
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return env


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric_value(text: str, name: str) -> float | None:
    """Value of the first sample whose name+labels start with ``name`` (e.g. 'edgetally_frames_total')."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{") or ("{" in name and line.startswith(name)):
            return float(line.rsplit(" ", 1)[1])
    return None

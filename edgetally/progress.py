"""A dependency-free progress line on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, label: str = "frames", stream: TextIO | None = None) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._start = time.monotonic()
        self._last = 0.0

    def set_total(self, total: int | None) -> None:
        """Learn the total once the source is open (the smaller of two limits wins)."""
        if total and total > 0:
            self.total = min(self.total, total) if self.total else total

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and done != self.total):
            return
        self._last = now
        rate = done / max(now - self._start, 1e-9)
        if self.total:
            width = 30
            filled = int(width * min(done, self.total) / self.total)
            eta = (self.total - done) / rate if rate > 0 else 0.0
            text = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {self.label} {rate:5.1f}/s eta {eta:4.0f}s"
        else:
            text = f"{done} {self.label} {rate:5.1f}/s"
        self.stream.write("\r" + text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

"""`edge demo`'s progress line while counting: frames, video time, speed and the running counts."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from edgetally.hooks import Hook, RunContext
from edgetally.structures import FrameResult


class CountProgress(Hook):
    """Hook: on a terminal one line rewritten in place twice a second; otherwise (a pipe, a log) a
    new line every ``interval_s``, so whoever watches a log sees the demo is alive too."""

    def __init__(self, total_frames: int | None, stream: TextIO | None = None, interval_s: float = 5.0) -> None:
        self.total = total_frames if total_frames and total_frames > 0 else None
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval_s = 0.5 if self.tty else interval_s
        self.lines = 0
        self._context: RunContext | None = None
        self._start = 0.0
        self._next = 0.0

    def open(self, context: RunContext) -> None:
        self._context = context
        self._start = time.monotonic()
        self._next = self._start + self.interval_s

    def reconfigured(self, context: RunContext) -> None:
        self._context = context

    def frame(self, result: FrameResult) -> None:
        now = time.monotonic()
        if now < self._next and result.frames != self.total:
            return
        self._next = now + self.interval_s
        self._write(self.text(result.frames, result.frame.timestamp, now - self._start))

    def text(self, frames: int, video_s: float, wall_s: float) -> str:
        of = f"/{self.total}" if self.total else ""
        fps = frames / wall_s if wall_s > 0 else 0.0
        return f"[run] frame {frames}{of}  video {video_s:5.1f} s  {fps:5.1f} fps  counted {self.counted()}"

    def counted(self) -> str:
        """'in 5 out 7' summed over classes, per counter."""
        totals = self._context.totals.values if self._context is not None else {}
        parts = []
        for counter, per_class in sorted(totals.items()):
            dirs: dict[str, int] = {}
            for per_dir in per_class.values():
                for direction, n in per_dir.items():
                    dirs[direction] = dirs.get(direction, 0) + n
            parts.append(f"{counter}: " + " ".join(f"{d} {n}" for d, n in sorted(dirs.items())))
        return "; ".join(parts) or "nothing yet"

    def _write(self, text: str) -> None:
        self.stream.write(f"\r{text}\x1b[K" if self.tty else text + "\n")
        self.stream.flush()
        self.lines += 1

    def close(self, final_state: str = "stopped") -> None:
        if self.tty and self.lines:
            self.stream.write("\n")
            self.stream.flush()

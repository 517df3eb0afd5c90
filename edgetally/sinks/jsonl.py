"""Count events as JSON lines, one object per crossing, flushed per event so a crash loses none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from edgetally.sinks import RunContext, RunStats
from edgetally.structures import CountEvent


class JsonlEventSink:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def open(self, context: RunContext) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")

    def event(self, event: CountEvent, cumulative: int) -> None:
        assert self._fh is not None, "open() first"
        self._fh.write(json.dumps(event.to_json()) + "\n")
        self._fh.flush()

    def stats(self, stats: RunStats) -> None:
        pass

    def close(self, final_state: str = "stopped") -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

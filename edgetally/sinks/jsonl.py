"""JSON lines files: count events (a sink) and per-frame detections (a hook).

Events are appended, never truncated: restarts, upgrades and watchdog restarts keep the history.
Each line is flushed as it is written, so a crash loses nothing already counted. Each run adds a
marker line when it starts and one when it stops cleanly::

    {"run_start": "2026-05-01T08:00:00Z", "ts": 1777622400.0, "device_id": "cam1", "counters": ["north"], "version": "0.4.0"}
    {"counter": "north", "kind": "line", "class": "car", "direction": "in", ...}
    {"run_end": "2026-05-01T09:00:00Z", "ts": 1777626000.0, "state": "stopped"}

A consumer skips every object with a ``run_start`` or ``run_end`` key (count events never have
one; ``read_events`` does it). A run with a start marker and no end marker was killed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from edgetally import __version__
from edgetally.config.models import RunSettings
from edgetally.hooks import Hook, RunContext, Sink
from edgetally.structures import CountEvent, FrameResult


def from_settings(settings: RunSettings, earlier: Sequence[Sink] = ()) -> JsonlEventSink | None:
    """``--events-out`` / ``outputs.events``."""
    return JsonlEventSink(settings.outputs.events) if settings.outputs.events is not None else None


MARKER_KEYS = ("run_start", "run_end")


def _now() -> tuple[str, float]:
    ts = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)), round(ts, 3)


class JsonlEventSink(Sink):
    """One JSON object per count event, appended; run markers (module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def open(self, context: RunContext) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole run
        if self._ends_mid_line():
            self._fh.write("\n")  # a run killed mid-write: its partial line must not swallow our marker
        when, ts = _now()
        self._write(
            {
                "run_start": when,
                "ts": ts,
                "device_id": context.device_id,
                "counters": [c.name for c in context.counters],
                "version": __version__,
            }
        )

    def _ends_mid_line(self) -> bool:
        assert self._fh is not None
        end = self._fh.seek(0, 2)
        if end == 0:
            return False
        self._fh.seek(end - 1)
        last = self._fh.read(1)
        self._fh.seek(0, 2)
        return last != "\n"

    def _write(self, obj: dict[str, Any]) -> None:
        assert self._fh is not None, "open() first"
        self._fh.write(json.dumps(obj) + "\n")
        self._fh.flush()

    def event(self, event: CountEvent, cumulative: int) -> None:
        self._write(event.to_json())

    def events(self, batch: Sequence[tuple[CountEvent, int]]) -> None:
        """A frame's events, one flush."""
        assert self._fh is not None, "open() first"
        self._fh.write("".join(json.dumps(e.to_json()) + "\n" for e, _ in batch))
        self._fh.flush()

    def close(self, final_state: str = "stopped") -> None:
        if self._fh is not None:
            when, ts = _now()
            self._write({"run_end": when, "ts": ts, "state": final_state})
            self._fh.close()
            self._fh = None


def is_marker(obj: object) -> bool:
    """True for the per-run marker lines (``run_start`` / ``run_end``)."""
    return isinstance(obj, dict) and any(k in obj for k in MARKER_KEYS)


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """The count events of an --events-out file, every run in order, markers skipped."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:  # the partial last line of a run that was killed mid-write
            continue
        if not is_marker(obj):
            out.append(obj)
    return out


class DetectionsWriter(Hook):
    """``--detections-out``: the detector's output per frame, before tracking, in source pixels.
    Frames the detector did not look at are not written."""

    def __init__(self, path: str | Path, labels: list[str]) -> None:
        self.path = Path(path)
        self._labels = labels
        self._fh: IO[str] | None = None

    def open(self, context: RunContext) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole run, closed in close()

    def frame(self, result: FrameResult) -> None:
        detections = result.detections
        if detections is None or self._fh is None:
            return
        items = [
            {
                "xyxy": [round(float(v), 2) for v in box],
                "score": round(float(score), 4),
                "class": self._labels[int(cid)],
                "class_id": int(cid),
            }
            for box, score, cid in zip(detections.xyxy, detections.scores, detections.class_ids)
        ]
        frame = result.frame
        source = frame.source_name or str(frame.index)
        self._fh.write(json.dumps({"frame": frame.index, "source": source, "detections": items}) + "\n")

    def close(self, final_state: str = "stopped") -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

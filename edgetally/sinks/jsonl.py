"""JSON lines files: count events (a sink) and per-frame detections (a hook).

Each line is flushed as it is written, so a crash loses nothing already counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Sequence

from edgetally.config.models import RunSettings
from edgetally.hooks import Hook, RunContext, Sink
from edgetally.structures import CountEvent, FrameResult


def from_settings(settings: RunSettings, earlier: Sequence[Sink] = ()) -> JsonlEventSink | None:
    """``--events-out`` / ``outputs.events``."""
    return JsonlEventSink(settings.outputs.events) if settings.outputs.events is not None else None


class JsonlEventSink(Sink):
    """One JSON object per count event."""

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

    def close(self, final_state: str = "stopped") -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class DetectionsWriter(Hook):
    """``--detections-out``: the detector's output per frame, before tracking, in source pixels.
    Frames the detector did not look at are not written."""

    def __init__(self, path: str | Path, labels: list[str]) -> None:
        self.path = Path(path)
        self._labels = labels
        self._fh: IO[str] | None = None

    def open(self, context: RunContext) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")

    def frame(self, result: FrameResult) -> None:
        detections = result.detections
        if detections is None or self._fh is None:
            return
        items = [
            {"xyxy": [round(float(v), 2) for v in box], "score": round(float(score), 4),
             "class": self._labels[int(cid)], "class_id": int(cid)}
            for box, score, cid in zip(detections.xyxy, detections.scores, detections.class_ids)
        ]
        frame = result.frame
        source = frame.source_name or str(frame.index)
        self._fh.write(json.dumps({"frame": frame.index, "source": source, "detections": items}) + "\n")

    def close(self, final_state: str = "stopped") -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

"""What a run hands to the code around it: a ``RunContext`` at start, a ``FrameResult`` per frame.

Two kinds of listener, both called from the frame loop's thread (so they must return quickly):

- a ``Hook`` watches the run: sd_notify, /metrics, an annotated video, MQTT snapshots, a detections
  file. ``open(context)`` once, ``frame(result)`` per frame, ``reconfigured(context)`` after a
  reload, ``close(state)`` at the end;
- a ``Sink`` is a hook that also receives the count events (in order, with the running total) and
  the periodic stats: JSON lines, MQTT. Slow I/O belongs on the sink's own thread behind a durable
  queue, never in these calls.

Neither reads the pipeline's internals: everything they may use is in the context or the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from edgetally.structures import CountEvent, CountTotals, FrameResult


@dataclass(frozen=True)
class CounterInfo:
    """A configured counter as listeners see it: geometry in source pixels."""

    name: str
    kind: str  # "line" | "zone"
    directions: tuple[str, ...]  # ("in", "out") or ("entered", "exited")
    points: tuple[tuple[float, float], ...] = ()  # line: (p1, p2); zone: the polygon


@dataclass(frozen=True)
class ModelInfo:
    path: str
    runtime: str
    precision: str
    labels: tuple[str, ...]


@dataclass
class RunContext:
    """Everything a sink or hook learns about the run.

    ``totals``: the live cumulative counts (owned by the pipeline: read them, never write them; a
    sink's ``open`` may fill them from its own persisted store before the first frame).
    ``commands``: ask the pipeline for a reset or reload (thread-safe, from any thread).
    ``health`` / ``metrics``: read at any time, from any thread: the sinks' problems (a dead worker)
    and the numbers behind /metrics (camera and outbox counters).
    """

    device_id: str
    counters: list[CounterInfo]
    classes: list[str]
    totals: CountTotals
    model: ModelInfo | None = None
    source_name: str = ""
    source_fps: float | None = None
    commands: Callable[[dict[str, object]], None] = field(default=lambda cmd: None)
    health: Callable[[], list[str]] = field(default=list)
    metrics: Callable[[], dict[str, float]] = field(default=dict)


@dataclass
class RunStats:
    frames: int
    fps: float
    infer_ms_p50: float
    dropped_frames: int
    camera_age_s: float
    reconnects: int
    extra: dict[str, float] = field(default_factory=dict)


class Hook:
    """Base class of run listeners; every method is optional (the defaults do nothing)."""

    def open(self, context: RunContext) -> None:
        """Once, before the first frame."""

    def frame(self, result: FrameResult) -> None:
        """After each frame has been tracked and counted (and its events handed to the sinks)."""

    def reconfigured(self, context: RunContext) -> None:
        """After a reload changed the counters or the class filter."""

    def close(self, final_state: str = "stopped") -> None:
        """Once, at the end ("stopped" or "error"), also after a failure."""


class Sink(Hook):
    """A hook that also receives every count event and the periodic stats."""

    def event(self, event: CountEvent, cumulative: int) -> None:
        """``cumulative``: the counter/class/direction total after this event."""

    def events(self, batch: Sequence[tuple[CountEvent, int]]) -> None:
        """All the count events of one frame, with their running totals, in order. The pipeline
        calls this; a durable sink commits the batch together (the MQTT outbox: one fsync per
        frame, every event on disk when the call returns). By default: ``event()`` per event."""
        for event, cumulative in batch:
            self.event(event, cumulative)

    def stats(self, stats: RunStats) -> None:
        """About once per ``stats_interval_s`` and once at the end."""

    def totals_changed(self) -> None:
        """The totals changed other than through ``event()`` (a reset command): persist/re-publish."""

    def problems(self) -> list[str]:
        """Why this sink is not working (a dead worker thread), or nothing."""
        return []

    def metrics(self) -> dict[str, float]:
        """Numbers for /metrics (outbox depth, broker connection, ...)."""
        return {}

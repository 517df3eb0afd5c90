"""Where counts go: JSONL files, MQTT, ... All sinks share one small protocol.

The pipeline calls, in order: ``open(context)`` once, then ``event(...)`` for every count event
(in order, from the frame loop) and ``stats(...)`` about once per ``stats_interval_s``, and
finally ``close(final_state)``. A sink must never block the frame loop for long: slow I/O
(network) belongs on the sink's own thread behind a durable queue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from edgetally.structures import CountEvent, CountTotals


@dataclass(frozen=True)
class CounterInfo:
    name: str
    kind: str  # "line" | "zone"
    directions: tuple[str, ...]  # ("in", "out") or ("entered", "exited")


@dataclass
class RunContext:
    """What sinks learn at start. ``commands`` lets a sink ask the pipeline for things safely:
    the pipeline drains it from the frame loop (thread-safe append from any thread)."""

    device_id: str
    counters: list[CounterInfo]
    classes: list[str]
    totals: CountTotals
    commands: Callable[[dict[str, object]], None] = field(default=lambda cmd: None)


@dataclass
class RunStats:
    frames: int
    fps: float
    infer_ms_p50: float
    dropped_frames: int
    camera_age_s: float
    reconnects: int
    extra: dict[str, float] = field(default_factory=dict)


class Sink(Protocol):
    def open(self, context: RunContext) -> None: ...

    def event(self, event: CountEvent, cumulative: int) -> None:
        """``cumulative``: the counter/class/direction total after this event."""

    def stats(self, stats: RunStats) -> None: ...

    def close(self, final_state: str = "stopped") -> None: ...


@runtime_checkable
class BatchSink(Protocol):
    """Optional extension (MQTT and JSONL sinks implement it): all the count events of one frame
    in one call, so a durable sink commits them together (the MQTT outbox: one fsync per frame
    instead of one per event; every event is on disk when the call returns). The frame loop
    prefers it over calling ``event()`` per event::

        pairs = [(event, totals.add(event)) for event in events]
        for sink in sinks:
            if isinstance(sink, BatchSink):
                sink.events(pairs)
            else:
                for event, cumulative in pairs:
                    sink.event(event, cumulative)
    """

    def events(self, batch: Sequence[tuple[CountEvent, int]]) -> None: ...


@runtime_checkable
class TotalsAwareSink(Protocol):
    """Optional extension (the MQTT sink implements it). After the pipeline changes
    ``RunContext.totals`` other than through ``event()`` (a ``{"cmd": "reset"}`` command), it calls
    ``totals_changed()`` on the frame-loop thread so the sink persists and re-publishes the totals:

        for sink in sinks:
            if isinstance(sink, TotalsAwareSink):
                sink.totals_changed()

    Restoring works the other way: a sink's ``open()`` may fill ``context.totals`` from its own
    persisted store, so ``open()`` must run before the first frame."""

    def totals_changed(self) -> None: ...

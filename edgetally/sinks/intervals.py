"""Interval counts and turning movements as a Sink: history on the device, closed bins over MQTT.

Kept whether or not MQTT is configured (``history-<device>.sqlite`` beside the outbox). With an
MQTT sink it publishes through that sink's durable outbox (never a second client): each closed bin
as one message per counter x class x direction on ``<prefix>/<device>/intervals`` (QoS 1, replayed
after a broker outage) plus the latest one retained on ``.../interval/<counter>/<class>/<dir>``,
and each decided movement on ``.../movements``.

Besides the Sink calls (``frame(result)`` per processed frame feeds ``observe(track_ids, timestamp)``),
``build_pipeline`` calls ``settings_changed(settings)`` after a reload. Bins also close on a timer
thread while no frame comes (a camera outage shows as bins with 0 s observed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from edgetally.config.models import IntervalSettings, MovementSettings, RunSettings
from edgetally.counting.movements import MovementCounter
from edgetally.history.recorder import IntervalRecorder
from edgetally.history.rows import IntervalRow, stored_rows
from edgetally.history.store import HistoryStore, KeyInfo
from edgetally.hooks import RunContext, Sink
from edgetally.sinks.topics import Topics, encode, interval_payload, movement_payload
from edgetally.statedir import state_dir
from edgetally.structures import CountEvent, FrameResult

log = logging.getLogger(__name__)

_DAY_S = 86400


class IntervalPublisher(Protocol):
    """What the interval sink needs from the MQTT sink (``MqttSink`` implements it)."""

    topics: Topics | None

    def publish_durable(self, topic: str, payload: bytes) -> None: ...

    def set_retained(self, topic: str, payload: bytes) -> None: ...


def from_settings(settings: RunSettings, earlier: Sequence[Sink] = ()) -> IntervalSink | None:
    """The run's ``intervals:`` block; it publishes through the MQTT sink among ``earlier`` if any."""
    if not settings.intervals.enabled:
        return None
    from edgetally.build import tracker_config
    from edgetally.sinks.mqtt import MqttSink

    mqtt = next((s for s in earlier if isinstance(s, MqttSink)), None)
    device = settings.device_id
    if mqtt is not None:
        device = mqtt.settings.resolve_device_id(device)
    # A movement is decided once its track is gone for as long as the counters remember tracks.
    forget_s = tracker_config(settings.tracker).track_buffer_s + 1.0
    return IntervalSink(
        settings.intervals,
        settings.movements,
        device_id=device,
        publisher=mqtt,
        declared_classes=settings.classes,
        forget_after_s=forget_s,
    )


def history_path(settings: IntervalSettings, device: str) -> Path:
    """The ``intervals.history`` file, else ``history-<device>.sqlite`` in the state folder (beside the outbox)."""
    return settings.history if settings.history is not None else state_dir() / f"history-{device}.sqlite"


class IntervalSink(Sink):
    """A sink with per-frame input. ``declared_classes``: classes every counter reports in every
    bin even at 0 (the run's ``classes:``); other keys appear once counted. ``forget_after_s``: how
    long a track may be unseen before its movement is decided (the counters' forget time)."""

    def __init__(
        self,
        settings: IntervalSettings,
        movements: Sequence[MovementSettings] = (),
        *,
        device_id: str | None = None,
        publisher: IntervalPublisher | None = None,
        declared_classes: Sequence[str] | None = None,
        forget_after_s: float = 3.0,
        clock: Callable[[], float] = time.time,
        timer_s: float | None = 1.0,
    ) -> None:
        self.settings = settings
        self.device_id = device_id
        self.publisher = publisher if settings.publish else None
        self.declared_classes = list(declared_classes or [])
        self.forget_after_s = forget_after_s
        self.clock = clock
        self.timer_s = timer_s
        self.junctions = self._junctions(movements)
        self.store: HistoryStore | None = None
        self.recorder: IntervalRecorder | None = None
        self.published_bins = 0
        self._kinds: dict[str, str] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._closing = False

    # -- Sink ------------------------------------------------------------------------------------
    def open(self, context: RunContext) -> None:
        device = self.device_id or context.device_id
        self.store = HistoryStore(history_path(self.settings, device), device, self.settings.sync)
        self.recorder = IntervalRecorder(self.store, self.settings.bin_s, self.settings.gap_s)
        self._kinds = {c.name: c.kind for c in context.counters}
        self.store.declare(
            KeyInfo(c.name, c.kind, cls, d)
            for c in context.counters
            for cls in self.declared_classes
            for d in c.directions
        )
        with self._lock:
            now = self.clock()
            self._prune(now)
            self._publish(self.recorder.start(now))
            self._republish_latest()
        log.info(
            "intervals: %s bins in %s (device %s)%s",
            self.settings.bin,
            self.store.path,
            self.store.device,
            f", junctions {[j.name for j in self.junctions]}" if self.junctions else "",
        )
        if self.timer_s:
            self._thread = threading.Thread(target=self._timer, name="intervals", daemon=True)
            self._thread.start()

    def event(self, event: CountEvent, cumulative: int) -> None:
        with self._lock:
            self._count(event)
            for junction in self.junctions:
                junction.observe((event,))

    def close(self, final_state: str = "stopped") -> None:
        """The open bin stays open: the next start continues it. Trips still open are decided now
        (unfinished) into the history only: the MQTT sink closes first (its outbox comes first in the
        sink order), so they reach MQTT in their bin's rows when that bin closes after the next start."""
        self._closing = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self.recorder is None or self.store is None:
            return
        with self._lock:
            for junction in self.junctions:
                for movement in junction.flush():
                    self._movement(movement)
            self.recorder.reset_occupancy()
            self.recorder.flush()
            self.store.close()
        self.recorder = None

    def frame(self, result: FrameResult) -> None:
        self.observe(result.tracks.ids.tolist(), result.frame.timestamp)

    # -- per-frame input ---------------------------------------------------------------------------
    def observe(self, track_ids: Iterable[int] = (), timestamp: float | None = None) -> None:
        """One processed frame: ``track_ids`` visible now, ``timestamp`` on the source timeline (the
        clock movements are decided on; events carry the same timeline)."""
        with self._lock:
            if self.recorder is None:
                return
            now = self.clock()
            self._publish(self.recorder.frame(now))
            if self.junctions and timestamp is not None:
                ids = list(track_ids)  # ints (Tracks.ids.tolist())
                for junction in self.junctions:
                    for movement in junction.update((), ids, timestamp):
                        self._movement(movement)

    def tick(self) -> None:
        """Close bins that ended without frames (the timer thread calls this every ``timer_s``)."""
        with self._lock:
            if self.recorder is None:
                return
            now = self.clock()
            self._publish(self.recorder.tick(now))
            self._prune(now)

    def settings_changed(self, settings: RunSettings) -> None:
        """After a reload: new junctions (trips of an unchanged junction carry on), zones that went
        away stop counting occupancy. The bin length changes only with a restart."""
        with self._lock:
            old = {(j.name, j.approaches, j.entry): j for j in self.junctions}
            fresh = self._junctions(settings.movements)
            self.junctions = [old.get((j.name, j.approaches, j.entry), j) for j in fresh]
            for gone in set(old.values()) - set(self.junctions):
                for movement in gone.flush():
                    self._movement(movement)
            zones = {z.name for z in settings.zones}
            self._kinds = {**{ln.name: "line" for ln in settings.lines}, **{z: "zone" for z in zones}}
            if self.recorder is not None:
                self.recorder.reset_occupancy([z for z, _ in self.recorder.occupancy() if z not in zones])
            if settings.intervals.bin_s != self.settings.bin_s:
                log.warning(
                    "intervals: bin %s -> %s takes effect at the next start", self.settings.bin, settings.intervals.bin
                )

    # -- internals ------------------------------------------------------------------------------------
    def _junctions(self, movements: Sequence[MovementSettings]) -> list[MovementCounter]:
        return [MovementCounter(m.name, m.approaches, m.entry, self.forget_after_s) for m in movements]

    def _count(self, event: CountEvent) -> None:
        if self.recorder is None:
            return
        kind = event.kind if event.kind == "movement" else self._kinds.get(event.counter, event.kind)
        self.recorder.count(KeyInfo(event.counter, kind, event.class_name, event.direction), self.clock())

    def _movement(self, event: CountEvent) -> None:
        self._count(event)
        if (
            self.publisher is not None
            and self.publisher.topics is not None
            and self.store is not None
            and not self._closing
        ):
            payload = encode(movement_payload(event, self.store.device, self.clock()))
            self.publisher.publish_durable(self.publisher.topics.movements, payload)

    def _publish(self, closed: list[list[IntervalRow]]) -> None:
        self.published_bins += len(closed)
        if self.publisher is None or self.publisher.topics is None:
            return
        topics = self.publisher.topics
        for rows in closed:
            for row in rows:
                payload = encode(interval_payload(row.to_json()))
                self.publisher.publish_durable(topics.intervals, payload)
                self.publisher.set_retained(topics.interval(row.counter, row.class_name, row.direction), payload)

    def _republish_latest(self) -> None:
        """Retained 'latest bin' topics after a restart (a broker without persistence lost them)."""
        if self.publisher is None or self.publisher.topics is None or self.store is None:
            return
        last = self.store.last_closed()
        if last is None:
            return
        for row in stored_rows(self.store, last.start, last.start + 1):
            payload = encode(interval_payload(row.to_json()))
            self.publisher.set_retained(
                self.publisher.topics.interval(row.counter, row.class_name, row.direction), payload
            )

    def _prune(self, now: float) -> None:
        if self.store is not None and now - self._last_prune >= _DAY_S:
            self._last_prune = now
            gone = self.store.prune(int(now) - self.settings.retention_days * _DAY_S)
            if gone:
                log.info("intervals: %d bins older than %d days removed", gone, self.settings.retention_days)

    def _timer(self) -> None:
        assert self.timer_s
        while not self._stop.wait(self.timer_s):
            try:
                self.tick()
            except Exception:  # the history must never take the runner down
                log.exception("intervals: timer tick failed (will retry)")

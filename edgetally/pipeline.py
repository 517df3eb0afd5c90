"""Composes the stages: source -> preprocess -> runtime -> decode -> tracker -> counters -> sinks.

Three threads, each a stage, with short queues between them: capture + video decode +
preprocessing; inference; and the frame loop (the caller's thread): output decoding, tracking,
counting, sinks and observers. So the work around inference overlaps it instead of adding to it.
Tensors are written into a small ring of preallocated buffers, so the hot path allocates almost
nothing per frame.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Generic, Iterable, Iterator, Protocol, TypeVar

import numpy as np

from edgetally.artifact import Artifact
from edgetally.capture import open_source
from edgetally.config.models import RunSettings
from edgetally.counting import LineCounter, ZoneCounter
from edgetally.errors import ConfigError
from edgetally.postprocess import build_decoder
from edgetally.preprocess import Letterbox, Preprocessor
from edgetally.progress import Progress
from edgetally.runtimes import Runtime, load_runtime
from edgetally.sinks import CounterInfo, RunContext, RunStats, Sink, TotalsAwareSink
from edgetally.structures import CountEvent, CountTotals, Detections, Frame, Tracks
from edgetally.tracking import Tracker, TrackerConfig

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

_QUEUE_DEPTH = 2
# A tensor slot may be: queued for inference (_QUEUE_DEPTH), being inferred (1), being written (1).
# Once inferred it is free: the frame loop only sees outputs.
_RING = _QUEUE_DEPTH + 2
_INFER_WINDOW = 10_000


@dataclass(frozen=True)
class Prepared:
    frame: Frame
    tensor: np.ndarray
    letterbox: Letterbox


@dataclass(frozen=True)
class Inferred:
    frame: Frame
    letterbox: Letterbox
    outputs: list[np.ndarray]
    infer_ms: float


@dataclass
class RunSummary:
    frames: int = 0
    seconds: float = 0.0
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    # Recent inference times only: a 24/7 device must not grow a list per frame.
    infer_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_INFER_WINDOW))

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {"frames": self.frames, "seconds": round(self.seconds, 3), "fps": round(self.fps, 2), "counts": self.counts}


class Observer(Protocol):
    """Watches the frame loop (sd_notify, health endpoint, ...). Called from the frame loop thread;
    must return quickly."""

    def frame_done(self, pipeline: Pipeline, summary: RunSummary, events: list[CountEvent]) -> None: ...

    def stopped(self, pipeline: Pipeline, state: str) -> None: ...


class Stage(Generic[In, Out]):
    """Runs ``step(n, item)`` over ``items`` on its own thread; iterate to get the results in order.

    The queue between stages is short (_QUEUE_DEPTH): a slow consumer holds the producer back
    rather than letting frames pile up in memory. An exception in the thread is re-raised in the
    consumer; ``stop_soon`` ends iteration promptly even while the camera delivers nothing.
    """

    def __init__(self, name: str, items: Iterable[In], step: Callable[[int, In], Out]) -> None:
        self._items = items
        self._step = step
        self._queue: queue.Queue[Out | BaseException | None] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: Out | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for n, item in enumerate(self._items):
                if self._stop.is_set() or not self._put(self._step(n, item)):
                    return
            self._put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it there
            self._put(exc)

    def __iter__(self) -> Iterator[Out]:
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop_soon(self) -> None:
        """Make iteration end promptly (signal-safe: only sets an event)."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def build_counters(settings: RunSettings, labels: list[str]) -> list[LineCounter | ZoneCounter]:
    # A counter must remember a track at least as long as the tracker may re-find it, or a track
    # recovered after a gap looks new to the counter and its crossing is lost.
    forget_s = tracker_config(settings.tracker).track_buffer_s + 1.0
    counters: list[LineCounter | ZoneCounter] = []
    for line in settings.lines:
        counters.append(LineCounter(line.name, line.points[0], line.points[1], labels, anchor=line.anchor,
                                    forget_after_s=forget_s))
    for zone in settings.zones:
        counters.append(ZoneCounter(zone.name, zone.polygon, labels, anchor=zone.anchor, forget_after_s=forget_s))
    return counters


def class_filter(classes: list[str] | None, labels: list[str]) -> np.ndarray | None:
    """Boolean lookup table class_id -> keep, or None to keep everything."""
    if not classes:
        return None
    unknown = [c for c in classes if c not in labels]
    if unknown:
        raise ConfigError(f"classes: unknown class name(s) {unknown}; the model knows: {', '.join(labels)}")
    keep = np.zeros(len(labels), dtype=bool)
    keep[[labels.index(c) for c in classes]] = True
    return keep


def tracker_config(overrides: dict[str, float | int | bool]) -> TrackerConfig:
    try:
        return TrackerConfig(**overrides)
    except TypeError as exc:
        raise ConfigError(f"tracker: {exc}") from exc


def _stats_interval(settings: RunSettings) -> float:
    """Seconds between stats handed to the sinks: the mqtt block's ``stats_interval_s`` (validated
    with the MQTT settings when the sinks are built), else MqttSettings' default."""
    from edgetally.sinks.mqtt_settings import MqttSettings  # pydantic only, no paho

    default = MqttSettings.model_fields["stats_interval_s"].default
    return float((settings.mqtt or {}).get("stats_interval_s", default))


class Pipeline:
    """One camera, one model, its counters and sinks."""

    def __init__(self, settings: RunSettings, sinks: list[Sink] | None = None,
                 on_detections: Callable[[Frame, Detections], None] | None = None) -> None:
        self.settings = settings
        self.artifact = Artifact.load(settings.model)
        self.labels = self.artifact.manifest.labels
        self.keep = class_filter(settings.classes, self.labels)
        self.runtime: Runtime = load_runtime(self.artifact, threads=settings.threads)
        self.decode = build_decoder(self.artifact.manifest, settings.score_threshold, settings.max_detections)
        self.tracker = Tracker(tracker_config(settings.tracker))
        self.counters = build_counters(settings, self.labels)
        self.sinks = sinks or []
        self.on_detections = on_detections
        self.observers: list[Observer] = []
        self.reload_settings: Callable[[], RunSettings] | None = None
        self._stages: list[Stage] = []
        self.source: object | None = None  # the open FrameSource while running (stats for observers)
        # The frame being processed and its tracks, for observers that draw (annotated video, snapshots).
        self.current_frame: Frame | None = None
        self.current_tracks: Tracks = Tracks.empty()
        self.totals = CountTotals()
        self._commands: deque[dict[str, object]] = deque(maxlen=100)
        self._stop = threading.Event()
        self.stats_interval_s = _stats_interval(settings)

    def stop(self) -> None:
        """Ask the frame loop to finish after the current frame (safe from signal handlers)."""
        self._stop.set()
        for stage in self._stages:
            stage.stop_soon()

    def _context(self) -> RunContext:
        infos = [CounterInfo(c.name, "line", ("in", "out")) if isinstance(c, LineCounter)
                 else CounterInfo(c.name, "zone", ("entered", "exited")) for c in self.counters]
        classes = self.settings.classes or list(self.labels)
        device = self.settings.device_id or socket.gethostname()
        return RunContext(device, infos, classes, self.totals, commands=self.request)

    def infer(self, _n: int, item: Prepared) -> Inferred:
        t0 = time.perf_counter()
        outputs = self.runtime.infer(item.tensor)
        return Inferred(item.frame, item.letterbox, outputs, (time.perf_counter() - t0) * 1000.0)

    def detect(self, item: Inferred) -> Detections:
        detections = self.decode(item.outputs, item.letterbox)
        if self.keep is not None and len(detections):
            detections = detections.select(self.keep[detections.class_ids])
        return detections

    def _start_stages(self, source: Iterable[Frame]) -> Stage[Prepared, Inferred]:
        """Capture + preprocess on one thread, inference on another; the frame loop gets outputs.

        Inference runs back to back while the frame loop decodes, tracks and counts the previous
        frame, so those stages cost the throughput almost nothing.
        """
        pre = [Preprocessor(self.artifact.manifest.input) for _ in range(_RING)]

        def prepare(n: int, frame: Frame) -> Prepared:
            tensor, box = pre[n % _RING](frame.image)
            return Prepared(frame, tensor, box)

        frames = islice(source, self.settings.max_frames)
        reader = Stage("frame-reader", frames, prepare)
        inference = Stage("inference", reader, self.infer)
        self._stages = [reader, inference]
        return inference

    def _count(self, frame: Frame, detections: Detections) -> list[CountEvent]:
        tracks = self.current_tracks = self.tracker.update(detections, frame.timestamp)
        events: list[CountEvent] = []
        for counter in self.counters:
            events.extend(counter.update(tracks, frame.index, frame.timestamp))
        self._emit(events)
        return events

    def _emit(self, events: list[CountEvent]) -> None:
        for event in events:
            cumulative = self.totals.add(event)
            for sink in self.sinks:
                sink.event(event, cumulative)

    def run(self, progress: Progress | None = None) -> RunSummary:
        """Process the source to its end (or until ``stop()``); sinks and the source are always closed."""
        summary = RunSummary(counts=self.totals.values)
        opened: list[Sink] = []
        source = None
        state = "stopped"
        start = time.monotonic()
        try:
            context = self._context()
            for sink in self.sinks:  # before the camera: totals restored by a sink count from frame one
                sink.open(context)
                opened.append(sink)
            source = self.source = open_source(self.settings.source, _capture_options(self.settings))
            if progress is not None:
                progress.set_total(getattr(source, "frame_count", None))
            results = self._start_stages(source)
            start = time.monotonic()
            self._loop(results, summary, progress, start)
            # Final stats: a run shorter than one interval still reports its fps and frame count.
            self._publish_stats(summary, time.monotonic() - start)
            # End of the source (or a stop): tracks that crossed a line and were still inside its
            # hysteresis band when the video ended are committed now rather than lost.
            self._emit([e for counter in self.counters for e in counter.flush()])
        except BaseException:
            state = "error"
            raise
        finally:
            summary.seconds = time.monotonic() - start
            for stage in reversed(self._stages):
                stage.close()
            if source is not None:
                source.close()
            for sink in opened:
                sink.close(state)
            for observer in self.observers:
                observer.stopped(self, state)
        self._fill_zero_counts(summary)
        return summary

    def _loop(self, results: Iterable[Inferred], summary: RunSummary, progress: Progress | None,
              start: float) -> None:
        """The frame loop: decode, track, count, publish, for every inferred frame in order."""
        last_stats = start
        for item in results:
            self.current_frame = item.frame
            detections = self.detect(item)
            summary.infer_ms.append(item.infer_ms)
            if self.on_detections is not None:
                self.on_detections(item.frame, detections)
            events = self._count(item.frame, detections)
            summary.frames += 1
            for observer in self.observers:
                observer.frame_done(self, summary, events)
            self._drain_commands()
            if progress is not None:
                progress(summary.frames)
            now = time.monotonic()
            if now - last_stats >= self.stats_interval_s:
                self._publish_stats(summary, now - start)
                last_stats = now
            if self._stop.is_set():
                break

    def _publish_stats(self, summary: RunSummary, elapsed: float) -> None:
        recent = list(summary.infer_ms)[-200:]
        src_stats = getattr(self.source, "stats", None)
        stats = RunStats(
            frames=summary.frames,
            fps=summary.frames / elapsed if elapsed > 0 else 0.0,
            infer_ms_p50=float(np.median(recent)) if recent else 0.0,
            dropped_frames=int(getattr(src_stats, "dropped", 0)),
            camera_age_s=float(getattr(src_stats, "last_frame_age_s", None) or 0.0),
            reconnects=int(getattr(src_stats, "reconnects", 0)),
        )
        for sink in self.sinks:
            sink.stats(stats)

    def request(self, command: dict[str, object]) -> None:
        """Queue a command for the frame loop (thread- and signal-safe): reset or reload."""
        self._commands.append(command)

    def _drain_commands(self) -> None:
        while self._commands:
            command = self._commands.popleft()
            if command.get("cmd") == "reset":
                name = command.get("counter")
                for key in [k for k in self.totals.values if name in (None, k)]:
                    self.totals.values[key].clear()
                for sink in self.sinks:
                    if isinstance(sink, TotalsAwareSink):
                        sink.totals_changed()
                log.info("counter reset: %s", name or "all")
            elif command.get("cmd") == "reload" and self.reload_settings is not None:
                self._reload()

    def _reload(self) -> None:
        """Re-read the settings and rebuild the counters; totals and tracks carry on.

        Only counting geometry and class filters change on reload; a new model or source needs a restart.
        """
        try:
            settings = self.reload_settings() if self.reload_settings else self.settings
            counters = build_counters(settings, self.labels)
            keep = class_filter(settings.classes, self.labels)
        except Exception as exc:  # a bad edit must not stop a running counter
            log.error("reload failed, keeping the running settings: %s", exc)
            return
        self.counters, self.keep = counters, keep
        self.settings = settings.model_copy(update={"model": self.settings.model, "source": self.settings.source})
        log.info("reloaded: %d counter(s)", len(self.counters))

    def _fill_zero_counts(self, summary: RunSummary) -> None:
        """Every counter appears in the summary, with both directions for each class it saw."""
        for counter in self.counters:
            dirs = ("in", "out") if isinstance(counter, LineCounter) else ("entered", "exited")
            per_class = summary.counts.setdefault(counter.name, {})
            for values in per_class.values():
                for d in dirs:
                    values.setdefault(d, 0)


def _capture_options(settings: RunSettings):  # -> CaptureOptions
    from edgetally.capture import CaptureOptions

    c = settings.capture
    return CaptureOptions(
        width=c.width, height=c.height, fps=c.fps, fourcc=c.fourcc, frame_timeout_s=c.watchdog_s,
        reconnect_initial_s=c.reconnect_initial_s, reconnect_max_s=c.reconnect_max_s,
        max_reconnects=c.max_reconnects,
    )

"""The frame loop: source -> detector -> tracker -> counters -> sinks and hooks.

    pipeline = Pipeline(open_source("road.mp4"), Detector.from_artifact("art"), Tracker(),
                        [LineCounter("L", (320, 0), (320, 360), labels)], sinks=[JsonlEventSink("ev.jsonl")])
    summary = pipeline.run()

Three threads, each a stage, with short queues between them: capture + video decode +
preprocessing; inference; and the frame loop (the caller's thread): output decoding, tracking,
counting, sinks and hooks. So the work around inference overlaps it instead of adding to it.
Tensors are written into a small ring of preallocated buffers, so the hot path allocates almost
nothing per frame. ``build_pipeline`` (edgetally.build) assembles one from run settings.

Detection and tracking at different rates (``rate=plan_rate(detect_fps=5)``): the capture thread
decides per frame whether the detector sees it (edgetally.motion.rate); the others pass through
the inference stage untouched and the frame loop carries every track over them by optical flow
(edgetally.motion), so the counters see each path at the camera's rate.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Generic, TypeVar

import numpy as np

from edgetally.capture import FrameSource
from edgetally.counting import Counter, carry_over
from edgetally.detector import Detector
from edgetally.hooks import CounterInfo, Hook, ModelInfo, RunContext, RunStats, Sink
from edgetally.motion.rate import RatePlan, RateSplit
from edgetally.preprocess import Letterbox
from edgetally.progress import Progress
from edgetally.structures import CountEvent, CountTotals, Detections, Frame, FrameResult, Tracks
from edgetally.tracking import Tracker

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

_QUEUE_DEPTH = 2
# A tensor slot may be: queued for inference (_QUEUE_DEPTH), being inferred (1), being written (1).
# Once inferred it is free: the frame loop only sees outputs.
_RING = _QUEUE_DEPTH + 2
# With a rate split, the frames after a detection wait for its result before flow can carry the
# tracks over them: the queue holds about one inference's worth of camera frames (30 fps x 250 ms).
_SPLIT_QUEUE_DEPTH = 8
_INFER_WINDOW = 10_000
DEFAULT_STATS_INTERVAL_S = 5.0

# What a reload produces: the new counters and the new class filter (None: every class).
Reconfiguration = tuple[list[Counter], "list[str] | None"]


@dataclass(frozen=True)
class _Prepared:
    frame: Frame
    tensor: np.ndarray | None  # None: the detector skips this frame (motion carries the tracks)
    letterbox: Letterbox | None
    slot: int = -1


@dataclass(frozen=True)
class _Inferred:
    frame: Frame
    letterbox: Letterbox | None
    outputs: list[np.ndarray] | None  # None: not detected
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

    # Frames a damaged file could not decode (skipped), decoder processes that crashed, hung or leaked,
    # and why the last one did: the run's input problems, in the summary rather than only in a log.
    corrupt_frames: int = 0
    decoder_restarts: int = 0
    decoder_error: str | None = None
    # Frames the detector saw; the rest were carried by optical flow (a rate split).
    detected_frames: int = 0
    rate: str | None = None  # the rate plan, said in words, when the detector skips frames
    camera_fps: float = 0.0  # frames per second of the source's own timeline (recent), with a rate split

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "counts": self.counts,
        }
        if self.rate is not None:
            # Per second of video (the source's timestamps), not of processing: what a board would see live.
            detect_fps = self.camera_fps * self.detected_frames / self.frames if self.frames else 0.0
            out.update(
                rate=self.rate,
                detected_frames=self.detected_frames,
                propagated_frames=self.frames - self.detected_frames,
                camera_fps=round(self.camera_fps, 2),
                detect_fps=round(detect_fps, 2),
            )
        if self.corrupt_frames or self.decoder_restarts:
            out.update(
                corrupt_frames=self.corrupt_frames,
                decoder_restarts=self.decoder_restarts,
                decoder_error=self.decoder_error,
            )
        return out


class Stage(Generic[In, Out]):
    """Runs ``step(n, item)`` over ``items`` on its own thread; iterate to get the results in order.

    The queue between stages is short (_QUEUE_DEPTH): a slow consumer holds the producer back
    rather than letting frames pile up in memory. An exception in the thread is re-raised in the
    consumer; ``stop_soon`` ends iteration promptly even while the camera delivers nothing.
    """

    def __init__(
        self, name: str, items: Iterable[In], step: Callable[[int, In], Out], depth: int = _QUEUE_DEPTH
    ) -> None:
        self._items = items
        self._step = step
        self._queue: queue.Queue[Out | BaseException | None] = queue.Queue(maxsize=depth)
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


def counter_info(counter: Counter) -> CounterInfo:
    return CounterInfo(counter.name, counter.kind, counter.directions, counter.points)


class Pipeline:
    """One source, one detector, one tracker, its counters, sinks and hooks.

    ``device_id``: the name sinks publish under (default: the hostname, resolved by the caller).
    ``max_frames``: stop after that many frames. ``stats_interval_s``: how often sinks get stats.
    ``reload``: called in the frame loop on a reload request; returns the new counters and class
    filter. Counters keep their per-track state where their geometry did not change.
    ``rate``: which frames the detector sees (``plan_rate(detect_every=k)`` or ``detect_fps=N|"auto"``);
    default every frame. Below that, optical flow carries the tracks.
    """

    def __init__(
        self,
        source: FrameSource,
        detector: Detector,
        tracker: Tracker,
        counters: Sequence[Counter],
        sinks: Sequence[Sink] = (),
        hooks: Sequence[Hook] = (),
        *,
        device_id: str = "edgetally",
        max_frames: int | None = None,
        stats_interval_s: float = DEFAULT_STATS_INTERVAL_S,
        reload: Callable[[], Reconfiguration] | None = None,
        rate: RatePlan | None = None,
    ) -> None:
        self.source = source
        self.detector = detector
        self.tracker = tracker
        self.rate = rate or RatePlan()
        self.split: RateSplit | None = None
        if self.rate != RatePlan():
            from edgetally.motion.stage import MotionTracker  # cv2: only when frames are skipped

            self.split = RateSplit(self.rate, live=source.is_live)
            self._motion = MotionTracker(tracker)
            self._reconnects = 0
        self.counters = list(counters)
        self.sinks = list(sinks)
        self.hooks = list(hooks)
        self.device_id = device_id
        self.max_frames = max_frames
        self.stats_interval_s = stats_interval_s
        self.reload = reload
        self.totals = CountTotals()
        self._classes = list(detector.labels)
        self._stages: list[Stage[Any, Any]] = []
        self._commands: deque[dict[str, object]] = deque(maxlen=100)
        self._stop = threading.Event()
        self._slots: _TensorSlots | None = None

    # -- control (any thread) ------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the frame loop to finish after the current frame (safe from signal handlers)."""
        self._stop.set()
        if self._slots is not None:
            self._slots.close()
        for stage in self._stages:
            stage.stop_soon()

    def request(self, command: dict[str, object]) -> None:
        """Queue a command for the frame loop (thread- and signal-safe): reset or reload."""
        self._commands.append(command)

    def context(self) -> RunContext:
        manifest = self.detector.manifest
        model = ModelInfo(
            str(self.detector.artifact.directory),
            str(manifest.runtime),
            str(manifest.precision),
            tuple(manifest.labels),
        )
        return RunContext(
            self.device_id,
            [counter_info(c) for c in self.counters],
            list(self._classes),
            self.totals,
            model=model,
            source_name=self.source.name,
            source_fps=self.source.fps,
            commands=self.request,
            health=self._health,
            metrics=self._metrics,
        )

    def _health(self) -> list[str]:
        return [problem for sink in self.sinks for problem in sink.problems()]

    def _metrics(self) -> dict[str, float]:
        stats = self.source.stats
        values = {"dropped_frames_total": float(stats.dropped), "camera_reconnects_total": float(stats.reconnects)}
        if stats.last_frame_age_s is not None:
            values["camera_frame_age_seconds"] = float(stats.last_frame_age_s)
        values.update(self._rate_values())
        for sink in self.sinks:
            values.update(sink.metrics())
        return values

    # -- the run -------------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> RunSummary:
        """Process the source to its end (or until ``stop()``); sinks, hooks and the source are always closed."""
        summary = RunSummary(counts=self.totals.values, rate=None if self.split is None else self.rate.describe())
        opened: list[Hook] = []
        state = "stopped"
        start = time.monotonic()
        try:
            context = self.context()
            for listener in [*self.sinks, *self.hooks]:  # sinks first: totals they restore count from frame one
                listener.open(context)
                opened.append(listener)
            if progress is not None:
                progress.set_total(self.source.frame_count)
            results = self._start_stages()
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
            if self.split is not None:
                summary.camera_fps = self.split.stats().camera_fps
            if self._slots is not None:
                self._slots.close()
            for stage in reversed(self._stages):
                stage.close()
            self.source.close()
            src = self.source.stats
            summary.corrupt_frames, summary.decoder_restarts = src.corrupt_frames, src.decoder_restarts
            summary.decoder_error = src.decoder_error
            for listener in opened:
                listener.close(state)
        self._fill_zero_counts(summary)
        return summary

    def _start_stages(self) -> Stage[_Prepared, _Inferred]:
        """Capture + preprocess on one thread, inference on another; the frame loop gets outputs.

        Inference runs back to back while the frame loop decodes, tracks and counts the previous
        frame, so those stages cost the throughput almost nothing.
        """
        pre = [self.detector.new_preprocessor() for _ in range(_RING)]
        split = self.split
        if split is None:

            def prepare(n: int, frame: Frame) -> _Prepared:
                tensor, box = pre[n % _RING](frame.image)
                return _Prepared(frame, tensor, box)
        else:
            slots = self._slots = _TensorSlots(_RING)
            # A live source's frame that arrives while the detector is busy is carried by motion: the
            # board lowers its own detection rate instead of queueing frames and falling behind.
            live = self.source.is_live

            def prepare(n: int, frame: Frame) -> _Prepared:
                if not split.decide(frame.timestamp, detector_busy=slots.busy() if live else None):
                    return _Prepared(frame, None, None)
                slot = slots.take()
                if slot is None:
                    return _Prepared(frame, None, None)
                tensor, box = pre[slot](frame.image)
                return _Prepared(frame, tensor, box, slot)

        def infer(_n: int, item: _Prepared) -> _Inferred:
            if item.tensor is None:
                return _Inferred(item.frame, None, None, 0.0)
            t0 = time.perf_counter()
            outputs = self.detector.infer(item.tensor)
            seconds = time.perf_counter() - t0
            if split is not None:
                split.inference_done(seconds)
                slots.give_back(item.slot)
            return _Inferred(item.frame, item.letterbox, outputs, seconds * 1000.0)

        depth = _QUEUE_DEPTH if split is None else _SPLIT_QUEUE_DEPTH
        reader = Stage("frame-reader", islice(self.source, self.max_frames), prepare, depth)
        inference = Stage("inference", reader, infer)
        self._stages = [reader, inference]
        return inference

    def _loop(self, results: Iterable[_Inferred], summary: RunSummary, progress: Progress | None, start: float) -> None:
        """Decode, track, count and publish every inferred frame, in order."""
        last_stats = start
        for item in results:
            detections, tracks = self._track(item)
            events = [
                e for counter in self.counters for e in counter.update(tracks, item.frame.index, item.frame.timestamp)
            ]
            self._emit(events)
            summary.frames += 1
            if detections is not None:
                summary.detected_frames += 1
                summary.infer_ms.append(item.infer_ms)
            result = FrameResult(
                item.frame,
                detections,
                tracks,
                tuple(events),
                summary.frames,
                None if detections is None else item.infer_ms,
            )
            for listener in [*self.sinks, *self.hooks]:
                listener.frame(result)
            self._drain_commands()
            if progress is not None:
                progress(summary.frames)
            now = time.monotonic()
            if now - last_stats >= self.stats_interval_s:
                self._publish_stats(summary, now - start)
                last_stats = now
            if self._stop.is_set():
                break

    def _track(self, item: _Inferred) -> tuple[Detections | None, Tracks]:
        """The one place detection and motion meet: detections (None on a skipped frame) -> tracks.

        The tracker gets the boxes down to the detector's ``low_score`` (ByteTrack's second look);
        what is returned, for outputs and sinks, only those at its score threshold."""
        detections = None
        if item.outputs is not None:
            assert item.letterbox is not None
            detections = self.detector.decode(item.outputs, item.letterbox, with_low=True)
        if self.split is None:
            assert detections is not None
            return self.detector.reported(detections), self.tracker.update(detections, item.frame.timestamp)
        reconnects = self.source.stats.reconnects
        if reconnects != self._reconnects:  # a camera restart: no flow across the gap
            self._reconnects = reconnects
            self._motion.reset()
        tracks = self._motion.step(item.frame.image, detections, item.frame.timestamp)
        return (None if detections is None else self.detector.reported(detections)), tracks

    def _rate_values(self) -> dict[str, float]:
        """The rate split's figures for stats and /metrics (nothing when the detector sees every frame)."""
        if self.split is None:
            return {}
        rate = self.split.stats()
        return {
            "camera_fps": rate.camera_fps,
            "detect_fps": rate.detect_fps,
            "frames_detected_total": float(rate.detected),
            "frames_propagated_total": float(rate.propagated),
            "frames_per_detection": rate.detect_every,
            "flow_ms": self._motion.last_flow_ms,
        }

    def _emit(self, events: list[CountEvent]) -> None:
        if not events:
            return
        batch = [(event, self.totals.add(event)) for event in events]
        for sink in self.sinks:  # one call per frame: a durable sink commits the frame's events together
            sink.events(batch)

    def _publish_stats(self, summary: RunSummary, elapsed: float) -> None:
        recent = list(summary.infer_ms)[-200:]
        src = self.source.stats
        stats = RunStats(
            frames=summary.frames,
            fps=summary.frames / elapsed if elapsed > 0 else 0.0,
            infer_ms_p50=float(np.median(recent)) if recent else 0.0,
            dropped_frames=int(src.dropped),
            camera_age_s=float(src.last_frame_age_s or 0.0),
            reconnects=int(src.reconnects),
            extra={
                "corrupt_frames": float(src.corrupt_frames),
                "decoder_restarts": float(src.decoder_restarts),
                **{k: round(v, 3) for k, v in self._rate_values().items()},
            },
        )
        for sink in self.sinks:
            sink.stats(stats)

    # -- commands (frame loop only) -------------------------------------------------------------

    def _drain_commands(self) -> None:
        while self._commands:
            command = self._commands.popleft()
            if command.get("cmd") == "reset":
                self._reset(command.get("counter"))
            elif command.get("cmd") == "reload" and self.reload is not None:
                self._reload()

    def _reset(self, name: object) -> None:
        for key in [k for k in self.totals.values if name in (None, k)]:
            self.totals.values[key].clear()
        for sink in self.sinks:
            sink.totals_changed()
        log.info("counter reset: %s", name or "all")

    def _reload(self) -> None:
        """Swap the counters and the class filter; totals and tracks carry on. A new model or
        source needs a restart."""
        assert self.reload is not None
        try:
            counters, classes = self.reload()
            self.detector.set_classes(classes)
        except Exception as exc:  # a bad edit must not stop a running counter
            log.error("reload failed, keeping the running settings: %s", exc)
            return
        carry_over(self.counters, counters)  # unchanged counters keep their tracks: no double count
        self.counters = counters
        self._classes = list(classes or self.detector.labels)
        context = self.context()
        for listener in [*self.sinks, *self.hooks]:
            listener.reconfigured(context)
        log.info("reloaded: %d counter(s)", len(self.counters))

    def _fill_zero_counts(self, summary: RunSummary) -> None:
        """Every counter appears in the summary, with both directions for each class it saw."""
        for counter in self.counters:
            per_class = summary.counts.setdefault(counter.name, {})
            for values in per_class.values():
                for d in counter.directions:
                    values.setdefault(d, 0)


class _TensorSlots:
    """Which of the preprocessors' tensor buffers are free, when the detector skips frames: the
    queue then holds more frames than tensors, so a buffer is taken per detected frame and given
    back once inferred. ``busy()``: a detection is queued or running."""

    def __init__(self, n: int) -> None:
        self._free: queue.Queue[int] = queue.Queue()
        for i in range(n):
            self._free.put(i)
        self._n = n
        self._closed = threading.Event()

    def busy(self) -> bool:
        return self._free.qsize() < self._n

    def take(self) -> int | None:
        """A free buffer, waiting for one; None once the run is over (the frame is then skipped)."""
        while not self._closed.is_set():
            try:
                return self._free.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def give_back(self, slot: int) -> None:
        self._free.put(slot)

    def close(self) -> None:
        self._closed.set()

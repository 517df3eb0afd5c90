"""`edge run`: settings -> sinks -> pipeline -> summary, with signals and output files."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Any, Callable, Sequence

from edgetally.config.models import RunSettings
from edgetally.errors import ConfigError
from edgetally.pipeline import Pipeline, RunSummary
from edgetally.progress import Progress
from edgetally.sinks import Sink
from edgetally.sinks.jsonl import JsonlEventSink
from edgetally.structures import Detections, Frame

log = logging.getLogger(__name__)


class DetectionsWriter:
    """``--detections-out``: the detector's output per frame, before tracking, in source pixels."""

    def __init__(self, path: Path, labels: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(path, "w", encoding="utf-8")
        self._labels = labels

    def __call__(self, frame: Frame, detections: Detections) -> None:
        items = [
            {"xyxy": [round(float(v), 2) for v in box], "score": round(float(score), 4),
             "class": self._labels[int(cid)], "class_id": int(cid)}
            for box, score, cid in zip(detections.xyxy, detections.scores, detections.class_ids)
        ]
        source = frame.source_name or str(frame.index)
        self._fh.write(json.dumps({"frame": frame.index, "source": source, "detections": items}) + "\n")

    def close(self) -> None:
        self._fh.close()


def build_sinks(settings: RunSettings) -> list[Sink]:
    """The durable MQTT outbox comes first: an event is in the outbox before it is anywhere else,
    so a kill between two sinks never leaves a count that MQTT will not deliver."""
    sinks: list[Sink] = []
    if settings.mqtt is not None:
        from pydantic import ValidationError

        from edgetally.sinks.mqtt import MqttSettings, MqttSink

        block = {**settings.mqtt}
        block.setdefault("device_id", settings.device_id)
        try:
            sinks.append(MqttSink(MqttSettings.model_validate(block)))
        except ValidationError as exc:
            lines = [f"mqtt.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise ConfigError("invalid MQTT settings:\n  " + "\n  ".join(lines)) from exc
    if settings.outputs.events is not None:
        sinks.append(JsonlEventSink(settings.outputs.events))
    return sinks


def _install_signals(pipeline: Pipeline) -> None:
    """SIGINT/SIGTERM finish the current frame, then flush sinks and write the summary."""
    if threading.current_thread() is not threading.main_thread():
        return

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping after this frame", signal.Signals(signum).name)
        pipeline.stop()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def run_counting(settings: RunSettings, reload: Callable[[], RunSettings] | None = None,
                 health_addr: str | None = None, observers: Sequence[Any] = ()) -> dict[str, Any]:
    """Run one counting pipeline to the end of its source (or a signal); return the summary dict.

    ``reload`` re-reads the settings on SIGHUP or an MQTT reload command; ``health_addr`` serves
    /healthz and /metrics. ``observers``: extra pipeline Observers (annotated video, snapshots); one
    with an ``attach(pipeline)`` method is attached before the first frame.
    """
    from edgetally.service.attach import attach_service

    pipeline = Pipeline(settings, build_sinks(settings))
    writer = None
    if settings.outputs.detections is not None:
        writer = DetectionsWriter(settings.outputs.detections, pipeline.labels)
        pipeline.on_detections = writer
    for observer in observers:
        if hasattr(observer, "attach"):
            observer.attach(pipeline)
        pipeline.observers.append(observer)
    _install_signals(pipeline)
    hooks = attach_service(pipeline, health_addr=health_addr, reload=reload)
    progress = Progress(settings.max_frames)
    log.info("counting on %s with %s (%s, %s)", settings.source, settings.model,
             pipeline.artifact.manifest.runtime, pipeline.artifact.manifest.precision)
    try:
        summary = pipeline.run(progress=progress)
    finally:
        hooks.close()
        progress.close()
        if writer is not None:
            writer.close()
    result = summary.to_json()
    if settings.outputs.summary is not None:
        settings.outputs.summary.parent.mkdir(parents=True, exist_ok=True)
        settings.outputs.summary.write_text(json.dumps(result, indent=2) + "\n")
    log.info("%d frames in %.1f s (%.1f fps)", summary.frames, summary.seconds, summary.fps)
    return result


__all__ = ["run_counting", "RunSummary", "DetectionsWriter"]

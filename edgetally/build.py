"""Run settings -> a ready ``Pipeline``: the one place that turns configuration into parts.

pipeline = build_pipeline(load_config("counting.yaml"), hooks=[VideoAnnotator("out.mp4")])
summary = pipeline.run()
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgetally.capture import CaptureOptions, open_source
from edgetally.config.geometry import geometry_warnings
from edgetally.config.models import RunSettings
from edgetally.counting import Counter, LineCounter, ZoneCounter
from edgetally.detector import Detector
from edgetally.errors import ConfigError
from edgetally.hooks import Hook, Sink
from edgetally.pipeline import Pipeline, Reconfiguration
from edgetally.sinks.config_command import ConfigCommand
from edgetally.sinks.intervals import IntervalSink
from edgetally.sinks.mqtt import MqttSink
from edgetally.snapshots import SnapshotPublisher
from edgetally.structures import FrameResult
from edgetally.tracking import Tracker, TrackerConfig

# Sinks made from run settings, in this order: the durable MQTT outbox first, so an event is in the
# outbox before it is anywhere else and a kill between two sinks never leaves a count MQTT will not
# deliver. Each module has ``from_settings(settings, earlier_sinks) -> Sink | None`` (the interval
# history publishes through the MQTT sink); adding a sink is one module plus its line here.
SINK_MODULES = ("edgetally.sinks.mqtt", "edgetally.sinks.jsonl", "edgetally.sinks.intervals")

log = logging.getLogger(__name__)


def build_pipeline(
    settings: RunSettings,
    hooks: Sequence[Hook] = (),
    *,
    sinks: Sequence[Sink] | None = None,
    reload: Callable[[], RunSettings] | None = None,
    config_path: Path | None = None,
) -> Pipeline:
    """Load the model, open the source and build the tracker, counters and sinks of ``settings``.

    ``sinks``: instead of the ones the settings ask for. ``reload``: re-reads the settings on a
    reload request (SIGHUP, MQTT ``cmd/reload`` and ``cmd/config``); only counters, the class filter
    and the interval history's movements change. ``config_path``: the YAML the settings came from,
    which the dashboard's editor may change over MQTT (``cmd/config``).
    """
    tracker = Tracker(tracker_config(settings.tracker))
    detector = Detector.from_artifact(
        settings.model,
        threads=settings.threads,
        score_threshold=settings.score_threshold,
        max_detections=settings.max_detections,
        classes=settings.classes,
        # The tracker's second look wants the boxes under the reported threshold (ByteTrack feeds
        # its tracker from 0.1): a weak detector scores a clear car 0.1-0.3 in some frames. A
        # score_threshold the user sets is what the tracker gets, too.
        low_score=tracker.config.low_score if settings.score_threshold is None else None,
    )
    labels = detector.labels
    counters = build_counters(settings, labels)
    hooks = list(hooks)
    if settings.outputs.detections is not None:
        from edgetally.sinks.jsonl import DetectionsWriter

        hooks.append(DetectionsWriter(settings.outputs.detections, labels))
    built_sinks = build_sinks(settings) if sinks is None else list(sinks)
    mqtt = next((s for s in built_sinks if isinstance(s, MqttSink)), None)
    editor = ConfigCommand(mqtt, config_path, labels) if mqtt is not None else None
    if editor is not None:
        editor.publish_state(settings)
        hooks.append(editor)
    if mqtt is not None and mqtt.settings.snapshot_interval_s > 0:
        hooks.append(SnapshotPublisher(mqtt.settings, interval_s=mqtt.settings.snapshot_interval_s))
    intervals = next((s for s in built_sinks if isinstance(s, IntervalSink)), None)
    geometry = GeometryCheck(settings)
    hooks.append(geometry)
    source = open_source(settings.source, capture_options(settings))
    try:
        rate = settings.rate_plan(source.fps, live=source.is_live)
    except Exception:
        source.close()
        raise

    def reconfigure() -> Reconfiguration:
        assert reload is not None
        try:
            fresh = reload()
            counters = build_counters(fresh, labels)
        except Exception as exc:
            if editor is not None:
                editor.reload_result(False, str(exc), None)
            raise
        geometry.settings = fresh
        if intervals is not None:
            intervals.settings_changed(fresh)
        if editor is not None:
            classes = ", ".join(fresh.classes) if fresh.classes else "all"
            editor.reload_result(
                True, f"{len(fresh.lines)} line(s), {len(fresh.zones)} zone(s), classes {classes}", fresh
            )
        return counters, fresh.classes

    return Pipeline(
        source,
        detector,
        tracker,
        counters,
        built_sinks,
        hooks,
        device_id=settings.device_id or socket.gethostname(),
        max_frames=settings.max_frames,
        stats_interval_s=stats_interval(settings),
        reload=reconfigure if reload is not None else None,
        rate=rate,
    )


class GeometryCheck(Hook):
    """Warns once per frame size when a line or zone lies (partly) outside the frame: drawn for
    another resolution, it would count nothing without a word."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self._checked: tuple[int, int, int] | None = None

    def frame(self, result: FrameResult) -> None:
        key = (result.frame.width, result.frame.height, id(self.settings))
        if key != self._checked:
            self._checked = key
            for warning in geometry_warnings(self.settings, result.frame.width, result.frame.height):
                log.warning("%s", warning)


def build_sinks(settings: RunSettings) -> list[Sink]:
    sinks: list[Sink] = []
    for name in SINK_MODULES:
        sink = importlib.import_module(name).from_settings(settings, sinks)
        if sink is not None:
            sinks.append(sink)
    return sinks


def build_counters(settings: RunSettings, labels: list[str]) -> list[Counter]:
    # A counter must remember a track at least as long as the tracker may re-find it, or a track
    # recovered after a gap looks new to the counter and its crossing is lost.
    forget_s = tracker_config(settings.tracker).track_buffer_s + 1.0
    counters: list[Counter] = []
    for line in settings.lines:
        counters.append(
            LineCounter(line.name, line.points[0], line.points[1], labels, anchor=line.anchor, forget_after_s=forget_s)
        )
    for zone in settings.zones:
        counters.append(ZoneCounter(zone.name, zone.polygon, labels, anchor=zone.anchor, forget_after_s=forget_s))
    return counters


def tracker_config(overrides: Mapping[str, Any]) -> TrackerConfig:
    try:
        return TrackerConfig(**overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tracker: {exc}") from exc


def capture_options(settings: RunSettings) -> CaptureOptions:
    c = settings.capture
    return CaptureOptions(
        width=c.width,
        height=c.height,
        fps=c.fps,
        fourcc=c.fourcc,
        frame_timeout_s=c.watchdog_s,
        reconnect_initial_s=c.reconnect_initial_s,
        reconnect_max_s=c.reconnect_max_s,
        max_reconnects=c.max_reconnects,
        isolate=c.isolate,
        max_bad_frames=c.max_bad_frames,
        decoder_timeout_s=c.decoder_timeout_s,
        decoder_max_rss_mb=c.decoder_max_rss_mb,
    )


def stats_interval(settings: RunSettings) -> float:
    """Seconds between stats handed to the sinks: the mqtt block's ``stats_interval_s`` (validated
    with the MQTT settings when the sinks are built), else MqttSettings' default."""
    from edgetally.sinks.mqtt_settings import MqttSettings  # pydantic only, no paho

    default = MqttSettings.model_fields["stats_interval_s"].default
    return float((settings.mqtt or {}).get("stats_interval_s", default))

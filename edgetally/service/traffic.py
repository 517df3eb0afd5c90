"""Issue 16's parts wired into today's ``Pipeline`` (interval history, movements, the ``cmd/config``
editor command), without changing the pipeline: what ``build_pipeline`` should do natively.

    pipeline = Pipeline(settings, build_sinks(settings))
    hooks = attach_service(pipeline, reload=lambda: load_config(path))   # sets pipeline.reload_settings
    parts = attach_traffic(pipeline, config_path=path)                    # after attach_service
    pipeline.run()

In the reworked pipeline the same parts plug in as: the IntervalSink as a sink (after the MQTT sink)
and a per-frame hook (``IntervalSink.on_frame(result)``), ``ConfigCommand.frame_seen(w, h)`` per frame,
and ``ConfigCommand.reload_result(ok, detail, settings)`` + ``IntervalSink.settings_changed(settings)``
after each reload the pipeline applies.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetally.sinks.config_command import ConfigCommand
from edgetally.sinks.intervals import IntervalSink
from edgetally.sinks.mqtt import MqttSink

if TYPE_CHECKING:
    from edgetally.config.models import RunSettings
    from edgetally.pipeline import Pipeline


@dataclass
class TrafficParts:
    intervals: IntervalSink | None
    config: ConfigCommand | None


class _FrameWatch:
    """Observer: the frame size for the editor (today's pipeline has no per-frame hook for sinks)."""

    def __init__(self, command: ConfigCommand) -> None:
        self.command = command

    def frame_done(self, pipeline: Any, summary: Any, events: list) -> None:
        frame = pipeline.current_frame
        if frame is not None:
            self.command.frame_seen(frame.width, frame.height)

    def stopped(self, pipeline: Any, state: str) -> None:
        pass


def forget_after_s(settings: RunSettings) -> float:
    """The counters' forget time (pipeline.build_counters: tracker buffer + 1 s)."""
    from edgetally.pipeline import tracker_config

    return tracker_config(settings.tracker).track_buffer_s + 1.0


def attach_traffic(pipeline: Pipeline, config_path: str | Path | None = None,
                   clock: Callable[[], float] = time.time, timer_s: float | None = 1.0) -> TrafficParts:
    settings = pipeline.settings
    mqtt = next((s for s in pipeline.sinks if isinstance(s, MqttSink)), None)
    device = settings.device_id or socket.gethostname()
    if mqtt is not None:
        device = mqtt.settings.resolve_device_id(device)
    intervals = None
    if settings.intervals.enabled:
        intervals = IntervalSink(settings.intervals, settings.movements, device_id=device, publisher=mqtt,
                                 declared_classes=settings.classes, forget_after_s=forget_after_s(settings),
                                 clock=clock, timer_s=timer_s)
        pipeline.sinks.append(intervals)
        pipeline.observers.append(intervals)
    command = None
    if mqtt is not None:
        command = ConfigCommand(mqtt, config_path, pipeline.labels)  # reloads through RunContext.commands
        command.publish_state(settings)
        pipeline.observers.append(_FrameWatch(command))
    _wrap_reload(pipeline, intervals, command)
    return TrafficParts(intervals, command)


def _wrap_reload(pipeline: Pipeline, intervals: IntervalSink | None, command: ConfigCommand | None) -> None:
    """Learn each reload's outcome from the settings callable the frame loop runs to apply it."""
    inner = pipeline.reload_settings
    if inner is None:
        return

    def reload() -> RunSettings:
        try:
            settings = inner()
        except Exception as exc:
            if command is not None:
                command.reload_result(False, str(exc), None)
            raise
        if intervals is not None:
            intervals.settings_changed(settings)
        if command is not None:
            command.reload_result(True, f"{len(settings.lines)} line(s), {len(settings.zones)} zone(s), classes "
                                        f"{', '.join(settings.classes) if settings.classes else 'all'}", settings)
        return settings

    pipeline.reload_settings = reload

"""``cmd/config``: change a running device's lines, zones and classes over MQTT (the dashboard's editor).

On paho's thread: validate the merged YAML (config/edit.py: the ``validate-config`` validator plus the
camera frame and the model's labels), write it atomically keeping ``<name>.prev``, then ask the frame
loop for a reload (``RunContext.commands``: ``{"cmd": "reload"}``). The answer on ``cmd/result`` comes
when the frame loop reports the reload (``reload_result``), so the editor learns what is running:

    {"v":1,"cmd":"config","ok":true,"message":"saved ...; reloaded: 2 line(s), 1 zone(s)","id":"..."}
    {"v":1,"cmd":"config","ok":false,"error":"<first error>","errors":["cfg.yaml (proposed):7: lines.0..."]}

A refused change writes nothing and the old configuration keeps running. The device also keeps
``<prefix>/<device>/config`` (retained) current: geometry, classes, the model's labels and the frame
size, which is what the editor draws on. Who may publish ``cmd/config`` is the broker's ACL
(docs/intervals.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetally.config.edit import apply_edit, restore_previous
from edgetally.hooks import Hook
from edgetally.sinks.topics import PAYLOAD_VERSION, encode
from edgetally.structures import FrameResult

if TYPE_CHECKING:
    from edgetally.config.models import RunSettings
    from edgetally.sinks.mqtt import MqttSink

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    request_id: str | None
    started: float
    saved: str
    timer: threading.Timer


class ConfigCommand(Hook):
    """``config_path``: the YAML the runner was started with (None: answers that editing is off).
    A hook: every frame tells it the camera's size; ``build_pipeline`` reports each reload's outcome."""

    def __init__(
        self,
        mqtt: MqttSink,
        config_path: str | Path | None,
        labels: Sequence[str],
        request_reload: Callable[[dict[str, object]], None] | None = None,
        reload_timeout_s: float = 10.0,
    ) -> None:
        """``request_reload``: default the pipeline's ``RunContext.commands`` (the MQTT sink's context)."""
        self.mqtt = mqtt
        self.config_path = None if config_path is None else Path(config_path)
        self.request_reload = request_reload or (lambda command: mqtt.context.commands(command))
        self.labels = list(labels)
        self.reload_timeout_s = reload_timeout_s
        self.frame_size: tuple[int, int] | None = None
        self._settings: RunSettings | None = None
        self._pending: _Pending | None = None
        self._lock = threading.Lock()
        mqtt.add_command("config", self.handle)

    # -- MQTT side (paho thread) ------------------------------------------------------------------
    def handle(self, command: dict[str, object], request_id: str | None) -> None:
        if self.config_path is None:
            self._answer(False, "this runner was started without --config: there is no file to change", request_id)
            return
        with self._lock:
            if self._pending is not None:
                self._answer(False, "another configuration change is being applied; try again", request_id)
                return
            change = {k: v for k, v in command.items() if k != "cmd"}
            result = apply_edit(self.config_path, change, self.frame_size, self.labels)
            if not result.ok:
                log.warning("cmd/config refused: %s", "; ".join(result.errors))
                self._answer(False, result.errors[0], request_id, {"errors": result.errors})
                return
            saved = f"saved {result.path}" + (f" (previous kept as {result.previous.name})" if result.previous else "")
            timer = threading.Timer(self.reload_timeout_s, self._timed_out)
            timer.daemon = True
            self._pending = _Pending(request_id, time.monotonic(), saved, timer)
            timer.start()
        log.info("cmd/config: %s; reloading", saved)
        self.request_reload({"cmd": "reload"})

    def _timed_out(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._answer(True, f"{pending.saved}; the reload waits for the next camera frame", pending.request_id)

    # -- frame-loop side ------------------------------------------------------------------------------
    def frame(self, result: FrameResult) -> None:
        self.frame_seen(result.frame.width, result.frame.height)

    def frame_seen(self, width: int, height: int) -> None:
        """Every frame (cheap): the first frame, or a new resolution, re-publishes the device config."""
        if self.frame_size != (width, height):
            self.frame_size = (width, height)
            if self._settings is not None:
                self.publish_state(self._settings)

    def reload_result(self, ok: bool, detail: str, settings: RunSettings | None) -> None:
        """The frame loop applied (or failed to apply) a reload; answers a pending change."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.timer.cancel()
        if ok and settings is not None:
            self.publish_state(settings)
        if pending is None:
            return
        ms = round((time.monotonic() - pending.started) * 1000.0, 1)
        if ok:
            self._answer(True, f"{pending.saved}; reloaded: {detail}", pending.request_id, {"elapsed_ms": ms})
            return
        restored = self.config_path is not None and restore_previous(self.config_path)
        self._answer(
            False,
            f"reload failed: {detail}; "
            + ("previous file restored, " if restored else "")
            + "the previous configuration keeps running",
            pending.request_id,
        )

    def publish_state(self, settings: RunSettings) -> None:
        """Retained ``<prefix>/<device>/config``: what the editor draws and edits."""
        self._settings = settings
        if self.mqtt.topics is not None:
            self.mqtt.set_retained(self.mqtt.topics.config, encode(self.state(settings)))

    def state(self, settings: RunSettings) -> dict[str, Any]:
        return {
            "v": PAYLOAD_VERSION,
            "ts": round(time.time(), 3),
            "lines": [
                {"name": ln.name, "points": [list(p) for p in ln.points], "anchor": ln.anchor} for ln in settings.lines
            ],
            "zones": [
                {"name": z.name, "polygon": [list(p) for p in z.polygon], "anchor": z.anchor} for z in settings.zones
            ],
            "classes": settings.classes,
            "labels": self.labels,
            "movements": [m.model_dump() for m in settings.movements],
            "frame": list(self.frame_size) if self.frame_size else None,
            "editable": self.config_path is not None,
            "bin": settings.intervals.bin,
        }

    def _answer(self, ok: bool, detail: str, request_id: str | None, extra: dict[str, Any] | None = None) -> None:
        self.mqtt.answer("config", ok, detail, request_id, extra)

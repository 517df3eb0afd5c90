"""Annotated JPEG snapshots over MQTT: ``<prefix>/<device>/snapshot`` (retained), for dashboards.

A hook of the frame loop: every ``interval_s`` it draws tracks, lines and counts on the current
frame and hands the JPEG to its own small paho client (QoS 0: a lost snapshot is replaced by the
next one; the MQTT sink's connection and outbox stay reserved for counts).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from edgetally.annotate import annotate, encode_jpeg, lines_of
from edgetally.hooks import Hook, RunContext
from edgetally.structures import FrameResult

if TYPE_CHECKING:
    from edgetally.sinks.mqtt_settings import MqttSettings

log = logging.getLogger(__name__)


def snapshot_topic(prefix: str, device_id: str) -> str:
    from edgetally.sinks.topics import Topics

    return Topics.build(prefix, device_id).snapshot


class SnapshotPublisher(Hook):
    """Hook: publish an annotated JPEG of the current frame at most every ``interval_s``."""

    def __init__(self, settings: MqttSettings, interval_s: float = 2.0, max_width: int = 960) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.max_width = max_width
        self.published = 0
        self._client: Any = None
        self._context: RunContext | None = None
        self._topic = ""
        self._next = 0.0
        self._last: FrameResult | None = None

    def open(self, context: RunContext) -> None:
        s = self.settings
        self._context = context
        device = s.resolve_device_id(context.device_id)
        self._topic = snapshot_topic(s.prefix, device)
        client = s.new_client(f"edgetally-{device}-snapshot")
        client.connect_async(s.broker.host, s.broker.port, keepalive=s.keepalive_s)
        client.loop_start()
        self._client = client

    def reconfigured(self, context: RunContext) -> None:
        self._context = context

    def frame(self, result: FrameResult) -> None:
        self._last = result
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        self._publish()

    def _publish(self) -> Any:
        result, context = self._last, self._context
        if result is None or context is None or self._client is None or not self._client.is_connected():
            return None
        labels = context.model.labels if context.model is not None else ()
        img = annotate(result.frame.image, result.tracks, labels, lines_of(context), context.totals.values)
        if img.shape[1] > self.max_width:
            import cv2

            scale = self.max_width / img.shape[1]
            img = cv2.resize(img, (self.max_width, int(round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        info = self._client.publish(self._topic, encode_jpeg(img), qos=0, retain=True)
        self.published += 1
        return info

    def close(self, final_state: str = "stopped") -> None:
        if self._client is None:
            return
        info = self._publish()  # the final counts, so the dashboard's picture matches its numbers
        if info is not None:
            try:
                info.wait_for_publish(timeout=2.0)
            except RuntimeError:  # connection lost meanwhile: the next run publishes a new one
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._client = None

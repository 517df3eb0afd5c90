"""Annotated JPEG snapshots over MQTT: ``<prefix>/<device>/snapshot`` (retained), for dashboards.

An Observer of the frame loop: every ``interval_s`` it draws tracks, lines and counts on the current
frame and hands the JPEG to its own small paho client (QoS 0: a lost snapshot is replaced by the
next one; the MQTT sink's connection and outbox stay reserved for counts).
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING, Any

from edgetally.annotate import annotate, encode_jpeg, lines_from_settings

if TYPE_CHECKING:
    from edgetally.pipeline import Pipeline, RunSummary
    from edgetally.sinks.mqtt_settings import MqttSettings
    from edgetally.structures import CountEvent

log = logging.getLogger(__name__)

def snapshot_topic(prefix: str, device_id: str) -> str:
    from edgetally.sinks.topics import Topics

    return Topics.build(prefix, device_id).snapshot


class SnapshotPublisher:
    """Observer: publish an annotated JPEG of the current frame at most every ``interval_s``."""

    def __init__(self, settings: MqttSettings, interval_s: float = 2.0, max_width: int = 960) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.max_width = max_width
        self.published = 0
        self._client: Any = None
        self._topic = ""
        self._next = 0.0

    def attach(self, pipeline: Pipeline) -> None:
        s = self.settings
        device = s.resolve_device_id(pipeline.settings.device_id or socket.gethostname())
        self._topic = snapshot_topic(s.prefix, device)
        client = s.new_client(f"edgetally-{device}-snapshot")
        client.connect_async(s.broker.host, s.broker.port, keepalive=s.keepalive_s)
        client.loop_start()
        self._client = client

    def frame_done(self, pipeline: Pipeline, summary: RunSummary, events: list[CountEvent]) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        self._publish(pipeline)

    def _publish(self, pipeline: Pipeline) -> Any:
        frame = pipeline.current_frame
        if frame is None or self._client is None or not self._client.is_connected():
            return None
        img = annotate(frame.image, pipeline.current_tracks, pipeline.labels, lines_from_settings(pipeline.settings),
                       pipeline.totals.values)
        if img.shape[1] > self.max_width:
            import cv2

            scale = self.max_width / img.shape[1]
            img = cv2.resize(img, (self.max_width, int(round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        info = self._client.publish(self._topic, encode_jpeg(img), qos=0, retain=True)
        self.published += 1
        return info

    def stopped(self, pipeline: Pipeline, state: str) -> None:
        if self._client is None:
            return
        info = self._publish(pipeline)  # the final counts, so the dashboard's picture matches its numbers
        if info is not None:
            try:
                info.wait_for_publish(timeout=2.0)
            except RuntimeError:  # connection lost meanwhile: the next run publishes a new one
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._client = None

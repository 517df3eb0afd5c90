"""MQTT topic layout and versioned JSON payloads (``"v": 1``). The one place that knows both.

Layout (DESIGN.md section 4)::

    <prefix>/<device>/availability                      online | offline (LWT) | stopped   retained
    <prefix>/<device>/state                             init | ready | degraded | error     retained
    <prefix>/<device>/counter/<counter>/<class>/<dir>   cumulative integer                  retained, QoS 1
    <prefix>/<device>/events                            JSON event, one per crossing        QoS 1
    <prefix>/<device>/stats                             JSON stats                          retained
    <prefix>/<device>/snapshot                          annotated JPEG (optional, demo)     retained
    <prefix>/<device>/intervals                         JSON row per closed bin x key       QoS 1 (outbox)
    <prefix>/<device>/interval/<counter>/<class>/<dir>  latest closed bin's row             retained
    <prefix>/<device>/movements                         JSON per decided track movement     QoS 1 (outbox)
    <prefix>/<device>/config                            geometry, classes, labels, frame    retained
    <prefix>/<device>/cmd/<name>                        commands in (reset, snapshot, reload, config)
    <prefix>/<device>/cmd/result                        command answers out
    <ha_prefix>/device/<device>/config                  Home Assistant device discovery    retained

Payload changes that break consumers bump ``PAYLOAD_VERSION``; adding keys does not.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from edgetally.structures import CountEvent

PAYLOAD_VERSION = 1

ONLINE, OFFLINE, STOPPED = "online", "offline", "stopped"
AVAILABILITY = (ONLINE, OFFLINE, STOPPED)
STATES = ("init", "ready", "degraded", "error")
COMMANDS = ("reset", "snapshot", "reload", "config")
RESULT = "result"

# MQTT wildcards, the level separator, NUL and anything not printable would either split a
# segment or be refused by the broker; whitespace breaks Node-RED/HA templates. Keep it boring.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_MAX_SEGMENT = 64


def sanitize_segment(value: str) -> str:
    """Make ``value`` one safe topic level: ``[A-Za-z0-9_.-]``, never empty, at most 64 chars.

    Examples: ``"line 1"`` -> ``"line_1"``; ``"a/b+#"`` -> ``"a_b_"``; ``""`` -> ``"_"``.
    """
    cleaned = _UNSAFE.sub("_", value.strip())[:_MAX_SEGMENT]
    return cleaned or "_"


@dataclass(frozen=True)
class Topics:
    """All topics of one device. ``prefix`` may hold several levels (``"site/edgetally"``)."""

    prefix: str
    device_id: str
    ha_prefix: str = "homeassistant"

    @classmethod
    def build(cls, prefix: str, device_id: str, ha_prefix: str = "homeassistant") -> Topics:
        levels = [sanitize_segment(p) for p in prefix.strip("/").split("/") if p.strip()]
        return cls("/".join(levels) or "edgetally", sanitize_segment(device_id), ha_prefix.strip("/"))

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def stats(self) -> str:
        return f"{self.base}/stats"

    @property
    def snapshot(self) -> str:
        return f"{self.base}/snapshot"

    @property
    def intervals(self) -> str:
        return f"{self.base}/intervals"

    def interval(self, counter: str, class_name: str, direction: str) -> str:
        segs = (sanitize_segment(counter), sanitize_segment(class_name), sanitize_segment(direction))
        return f"{self.base}/interval/{'/'.join(segs)}"

    @property
    def movements(self) -> str:
        return f"{self.base}/movements"

    @property
    def config(self) -> str:
        return f"{self.base}/config"

    def counter(self, counter: str, class_name: str, direction: str) -> str:
        segs = (sanitize_segment(counter), sanitize_segment(class_name), sanitize_segment(direction))
        return f"{self.base}/counter/{'/'.join(segs)}"

    @property
    def counters_wildcard(self) -> str:
        return f"{self.base}/counter/#"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    @property
    def cmd_wildcard(self) -> str:
        return f"{self.base}/cmd/+"

    @property
    def cmd_result(self) -> str:
        return self.cmd(RESULT)

    @property
    def ha_discovery(self) -> str:
        return f"{self.ha_prefix}/device/{self.device_id}/config"

    @property
    def ha_status(self) -> str:
        return f"{self.ha_prefix}/status"

    def command_name(self, topic: str) -> str | None:
        """``<base>/cmd/<name>`` -> ``name``; anything else -> None."""
        head = f"{self.base}/cmd/"
        if not topic.startswith(head) or "/" in topic[len(head) :]:
            return None
        return topic[len(head) :]


def encode(payload: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: stable bytes for identical content (easy to diff and test)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


def event_payload(seq: int, event: CountEvent, ts: float | None = None) -> dict[str, Any]:
    """One crossing. ``ts``: wall-clock epoch seconds when counted; ``src_ts``: source timeline."""
    return {
        "v": PAYLOAD_VERSION,
        "seq": int(seq),
        "ts": round(time.time() if ts is None else ts, 3),
        "counter": event.counter,
        "kind": event.kind,
        "class": event.class_name,
        "dir": event.direction,
        "track_id": int(event.track_id),
        "score": round(float(event.score), 4),
        "frame": int(event.frame_index),
        "src_ts": round(float(event.timestamp), 4),
    }


def interval_payload(row: dict[str, Any]) -> dict[str, Any]:
    """One closed bin x counter x class x direction (``edgetally.history.rows.IntervalRow.to_json``)."""
    return {"v": PAYLOAD_VERSION, **row}


def movement_payload(event: CountEvent, device: str, ts: float | None = None) -> dict[str, Any]:
    """One track's decided movement at a junction (``counter`` = the junction)."""
    origin, _, destination = event.direction.partition("->")
    return {
        "v": PAYLOAD_VERSION,
        "ts": round(time.time() if ts is None else ts, 3),
        "device": device,
        "junction": event.counter,
        "class": event.class_name,
        "movement": event.direction,
        "origin": origin,
        "destination": destination,
        "status": "unfinished" if "?" in (origin, destination) else "complete",
        "track_id": int(event.track_id),
        "frame": int(event.frame_index),
        "src_ts": round(float(event.timestamp), 4),
    }


def split_device_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """``<prefix>/<device>/<leaf>`` -> ``(device, leaf)``; anything else (other prefix, deeper or
    shallower topics) -> None. The device level is returned as sent: callers validate it."""
    head = prefix.strip("/") + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else None


def counter_payload(value: int) -> bytes:
    """Retained counters are bare integers: HA, Node-RED and Grafana read them without templates."""
    return str(int(value)).encode("ascii")


def stats_payload(fields: dict[str, float | int], ts: float | None = None) -> dict[str, Any]:
    return {"v": PAYLOAD_VERSION, "ts": round(time.time() if ts is None else ts, 3), **fields}


def result_payload(cmd: str, ok: bool, detail: str, request_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"v": PAYLOAD_VERSION, "ts": round(time.time(), 3), "cmd": cmd, "ok": ok}
    out["message" if ok else "error"] = detail
    if request_id is not None:
        out["id"] = request_id
    return out

"""What the dashboard knows, per device, built from MQTT messages. Thread-safe; no I/O.

Topic layout: docs/mqtt.md (``<prefix>/<device>/availability|state|counter/<c>/<class>/<dir>|events|
stats|snapshot``). Counters are retained cumulative values, so a dashboard started late still shows
the right totals; the per-minute chart is built from events, which are not retained (it starts
when the dashboard does).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_MINUTES_KEPT = 60
_SEQS_KEPT = 10_000
_BINS_KEPT = 300  # interval bins kept per device (e.g. 3 days of 15 min bins)
_RESULTS_KEPT = 50


@dataclass
class DeviceView:
    availability: str = "unknown"
    state: str = "unknown"
    counters: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    per_minute: dict[int, int] = field(default_factory=dict)  # epoch minute -> events
    snapshot: bytes | None = None
    snapshot_version: int = 0
    last_seen: float = 0.0
    seen_seqs: set[int] = field(default_factory=set)
    seq_order: deque[int] = field(default_factory=deque)
    config: dict[str, Any] | None = None  # the device's retained counting config (the editor's input)
    intervals: dict[tuple[int, int, str, str, str], dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # cmd/result answers by request id

    def add_interval(self, row: dict[str, Any]) -> None:
        """A closed bin's row (``intervals`` or the retained ``interval/...`` latest); replays overwrite."""
        key = (int(row["start_ts"]), int(row["bin_s"]), str(row["counter"]), str(row["class"]), str(row["direction"]))
        self.intervals[key] = row
        starts = sorted({k[0] for k in self.intervals})
        if len(starts) > _BINS_KEPT:
            cut = starts[-_BINS_KEPT]
            for k in [k for k in self.intervals if k[0] < cut]:
                del self.intervals[k]

    def add_result(self, result: dict[str, Any]) -> None:
        rid = result.get("id")
        if isinstance(rid, str):
            self.results[rid] = result
            for old in list(self.results)[:-_RESULTS_KEPT]:
                del self.results[old]

    def add_event(self, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if isinstance(seq, int):
            if seq in self.seen_seqs:  # an outbox replay after a reconnect: already charted
                return
            self.seen_seqs.add(seq)
            self.seq_order.append(seq)
            if len(self.seq_order) > _SEQS_KEPT:
                self.seen_seqs.discard(self.seq_order.popleft())
        minute = int(float(event.get("ts", time.time())) // 60)
        self.per_minute[minute] = self.per_minute.get(minute, 0) + 1
        for old in sorted(self.per_minute)[:-_MINUTES_KEPT]:
            del self.per_minute[old]

    def to_json(self) -> dict[str, Any]:
        return {
            "availability": self.availability, "state": self.state, "counters": self.counters,
            "stats": self.stats, "per_minute": [[m * 60, n] for m, n in sorted(self.per_minute.items())],
            "snapshot_version": self.snapshot_version if self.snapshot is not None else 0,
            "last_seen": round(self.last_seen, 3), "has_config": self.config is not None,
            "interval_bins": len({k[:2] for k in self.intervals}),
        }


class DashboardState:
    """Feed it ``handle(topic, payload)``; read ``to_json()`` and ``snapshot(device)``."""

    def __init__(self, prefix: str = "edgetally") -> None:
        self.prefix = prefix.strip("/")
        self._devices: dict[str, DeviceView] = {}
        self._lock = threading.Lock()
        self.messages = 0

    @property
    def subscription(self) -> str:
        return f"{self.prefix}/+/#"

    def handle(self, topic: str, payload: bytes) -> bool:
        """Apply one message; False when the topic is not one of ours (or its payload is bad)."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            return False
        levels = topic[len(head):].split("/")
        if len(levels) < 2:
            return False
        with self._lock:
            view = self._devices.setdefault(levels[0], DeviceView())
            ok = _apply(view, levels[1:], payload)
            if ok:
                view.last_seen = time.time()
                self.messages += 1
            return ok

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"prefix": self.prefix, "now": round(time.time(), 3),
                    "devices": {name: v.to_json() for name, v in sorted(self._devices.items())}}

    def snapshot(self, device: str) -> bytes | None:
        with self._lock:
            view = self._devices.get(device)
            return view.snapshot if view is not None else None

    def device_config(self, device: str) -> dict[str, Any] | None:
        with self._lock:
            view = self._devices.get(device)
            return None if view is None or view.config is None else dict(view.config)

    def interval_rows(self, device: str) -> list[dict[str, Any]]:
        """The bins received from ``device``, oldest first."""
        with self._lock:
            view = self._devices.get(device)
            return [] if view is None else [view.intervals[k] for k in sorted(view.intervals)]

    def result(self, device: str, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            view = self._devices.get(device)
            return None if view is None else view.results.get(request_id)


def _apply(view: DeviceView, rest: list[str], payload: bytes) -> bool:
    kind = rest[0]
    try:
        if kind == "availability" and len(rest) == 1:
            view.availability = payload.decode("utf-8", "replace").strip() or "unknown"
        elif kind == "state" and len(rest) == 1:
            view.state = payload.decode("utf-8", "replace").strip() or "unknown"
        elif kind == "counter" and len(rest) == 4:
            view.counters.setdefault(rest[1], {}).setdefault(rest[2], {})[rest[3]] = int(payload.decode().strip())
        elif kind == "events" and len(rest) == 1:
            view.add_event(json.loads(payload))
        elif kind == "stats" and len(rest) == 1:
            view.stats = json.loads(payload)
        elif (kind == "intervals" and len(rest) == 1) or (kind == "interval" and len(rest) == 4):
            view.add_interval(json.loads(payload))
        elif kind == "config" and len(rest) == 1:
            config = json.loads(payload)
            if not isinstance(config, dict):
                return False
            view.config = config
        elif kind == "cmd" and rest[1:] == ["result"]:
            view.add_result(json.loads(payload))
        elif kind == "snapshot" and len(rest) == 1:
            if not payload:  # an empty retained message clears the picture
                view.snapshot = None
                return True
            view.snapshot, view.snapshot_version = bytes(payload), view.snapshot_version + 1
        else:
            return False
    except (ValueError, UnicodeDecodeError, TypeError, KeyError, AttributeError):
        return False
    return True

"""What the dashboard knows, per device, built from MQTT messages. Thread-safe; no I/O.

Topic layout: docs/mqtt.md (``<prefix>/<device>/availability|state|counter/<c>/<class>/<dir>|events|
stats|snapshot``). Counters are retained cumulative values, so a dashboard started late still shows
the right totals; the per-minute chart is built from events, which are not retained (it starts
when the dashboard does).

Anyone who can publish on the broker can send anything here, so every message is validated
before it touches the state (a bad one is refused and counted, never raised), nothing that is
not finite JSON is stored (so ``/state.json`` is always valid JSON), and everything kept is
bounded: devices, counters per device, classes per counter, events remembered, payload sizes.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_MINUTES_KEPT = 60
_SEQS_KEPT = 10_000
_BINS_KEPT = 300  # interval bins kept per device (e.g. 3 days of 15 min bins)
_RESULTS_KEPT = 50
MAX_CONFIG_BYTES = 262_144  # a device's counting config: up to 100 lines and 100 zones of 1000 points
MAX_DEVICES = 256
MAX_COUNTERS = 64  # per device
MAX_CLASSES = 128  # per counter (COCO has 80)
MAX_JSON_BYTES = 16_384  # events and stats payloads
MAX_SNAPSHOT_BYTES = 4 << 20
MAX_COUNT = 2**53 - 1  # beyond this a JavaScript number is no longer exact
DIRECTIONS = frozenset({"in", "out", "entered", "exited"})
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # one topic level as the runner writes it (topics.sanitize_segment)
_WORD = re.compile(r"[a-z_]{1,16}")  # availability / state values
_MOVE = re.compile(r"[A-Za-z0-9_.\-?>]{1,132}")  # a direction, or a junction's movement "north->?"


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

    def add_interval(self, row: dict[str, Any]) -> bool:
        """A closed bin's row (``intervals`` or the retained ``interval/...`` latest); replays overwrite."""
        key = (row["start_ts"], row["bin_s"], row["counter"], row["class"], row["direction"])
        self.intervals[key] = row
        starts = sorted({k[0] for k in self.intervals})
        if len(starts) > _BINS_KEPT:
            cut = starts[-_BINS_KEPT]
            for k in [k for k in self.intervals if k[0] < cut]:
                del self.intervals[k]
        return True

    def add_result(self, result: dict[str, Any]) -> bool:
        rid = result.get("id")
        if not isinstance(rid, str):
            return False
        self.results[rid[:64]] = result
        for old in list(self.results)[:-_RESULTS_KEPT]:
            del self.results[old]
        return True

    def add_event(self, event: dict[str, Any]) -> bool:
        ts = event.get("ts", time.time())
        seq = event.get("seq")
        if not _finite(ts) or (seq is not None and not _count(seq)):
            return False
        if seq is not None:
            if seq in self.seen_seqs:  # an outbox replay after a reconnect: already charted
                return True
            self.seen_seqs.add(seq)
            self.seq_order.append(seq)
            if len(self.seq_order) > _SEQS_KEPT:
                self.seen_seqs.discard(self.seq_order.popleft())
        minute = int(ts // 60)
        self.per_minute[minute] = self.per_minute.get(minute, 0) + 1
        for old in sorted(self.per_minute)[:-_MINUTES_KEPT]:
            del self.per_minute[old]
        return True

    def set_count(self, counter: str, cls: str, direction: str, value: int) -> bool:
        """Store one retained counter; refused when it would grow the view past its bounds."""
        if counter not in self.counters and len(self.counters) >= MAX_COUNTERS:
            return False
        per = self.counters.setdefault(counter, {})
        if cls not in per and len(per) >= MAX_CLASSES:
            return False
        per.setdefault(cls, {})[direction] = value
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "availability": self.availability,
            "state": self.state,
            "counters": self.counters,
            "stats": self.stats,
            "per_minute": [[m * 60, n] for m, n in sorted(self.per_minute.items())],
            "snapshot_version": self.snapshot_version if self.snapshot is not None else 0,
            "last_seen": round(self.last_seen, 3),
            "has_config": self.config is not None,
            "interval_bins": len({k[:2] for k in self.intervals}),
        }


class DashboardState:
    """Feed it ``handle(topic, payload)``; read ``to_json()`` and ``snapshot(device)``."""

    def __init__(self, prefix: str = "edgetally", max_devices: int = MAX_DEVICES) -> None:
        self.prefix = prefix.strip("/")
        self.max_devices = max_devices
        self._devices: dict[str, DeviceView] = {}
        self._lock = threading.Lock()
        self.messages = 0
        self.refused = 0

    @property
    def subscription(self) -> str:
        return f"{self.prefix}/+/#"

    def handle(self, topic: str, payload: bytes) -> bool:
        """Apply one message; False when it is not one of ours or was refused. Never raises."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            return False
        levels = topic[len(head) :].split("/")
        ok = len(levels) >= 2 and _NAME.fullmatch(levels[0]) is not None and self._apply(levels, payload)
        with self._lock:
            if ok:
                self.messages += 1
            else:
                self.refused += 1
        return ok

    def _apply(self, levels: list[str], payload: bytes) -> bool:
        parsed = _parse(levels[1:], payload)
        if parsed is None:
            return False
        with self._lock:
            view = self._devices.get(levels[0])
            new = view is None
            if view is None:
                if len(self._devices) >= self.max_devices:
                    return False
                view = DeviceView()
            if not _store(view, levels[1:], parsed):
                return False
            if new:
                self._devices[levels[0]] = view
            view.last_seen = time.time()
            return True

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "prefix": self.prefix,
                "now": round(time.time(), 3),
                "refused": self.refused,
                "devices": {name: v.to_json() for name, v in sorted(self._devices.items())},
            }

    def dumps(self) -> bytes:
        """``to_json()`` as strict JSON (no NaN/Infinity: a browser's JSON.parse takes it)."""
        return json.dumps(self.to_json(), allow_nan=False).encode()

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


def _parse(rest: list[str], payload: bytes) -> Any:
    """The validated value a message carries, or None when it is refused."""
    kind = rest[0]
    if kind in ("availability", "state") and len(rest) == 1:
        text = payload.decode("utf-8", "replace").strip()
        return text if _WORD.fullmatch(text) else None
    if kind == "counter" and len(rest) == 4:
        if not (_NAME.fullmatch(rest[1]) and _NAME.fullmatch(rest[2]) and rest[3] in DIRECTIONS):
            return None
        text = payload.decode("ascii", "replace").strip()
        value = int(text) if text.isdigit() and len(text) <= 16 else None
        return value if value is not None and value <= MAX_COUNT else None
    if kind in ("events", "stats") and len(rest) == 1:
        data = _json_object(payload)
        return None if data is None else (data if kind == "events" else _clean_stats(data))
    if kind == "snapshot" and len(rest) == 1:
        if not payload:
            return b""  # an empty retained message clears the picture
        return bytes(payload) if len(payload) <= MAX_SNAPSHOT_BYTES and payload[:2] == b"\xff\xd8" else None
    if (kind == "intervals" and len(rest) == 1) or (kind == "interval" and len(rest) == 4):
        data = _json_object(payload, finite=True)
        return None if data is None else _clean_interval(data)
    if kind == "config" and len(rest) == 1:
        return _json_object(payload, MAX_CONFIG_BYTES, finite=True)
    if kind == "cmd" and rest[1:] == ["result"]:
        return _json_object(payload, finite=True)
    return None


def _store(view: DeviceView, rest: list[str], value: Any) -> bool:
    kind = rest[0]
    if kind == "availability":
        view.availability = value
    elif kind == "state":
        view.state = value
    elif kind == "counter":
        return view.set_count(rest[1], rest[2], rest[3], value)
    elif kind == "events":
        return view.add_event(value)
    elif kind == "stats":
        view.stats = value
    elif kind in ("intervals", "interval"):
        return view.add_interval(value)
    elif kind == "config":
        view.config = value
    elif kind == "cmd":
        return view.add_result(value)
    elif value:
        view.snapshot, view.snapshot_version = value, view.snapshot_version + 1
    else:
        view.snapshot = None
    return True


def _json_object(payload: bytes, limit: int = MAX_JSON_BYTES, finite: bool = False) -> dict[str, Any] | None:
    """A small JSON object, or None (too big, not UTF-8, not JSON, not an object, too deep; with
    ``finite``: holding NaN or Infinity, for what is stored as it is)."""
    if len(payload) > limit:
        return None
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant if finite else None)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")  # NaN / Infinity would make /state.json invalid for every viewer


def _clean_interval(row: dict[str, Any]) -> dict[str, Any] | None:
    """An interval row (docs/intervals.md) with the types the history page needs, or None."""
    names, direction = [row.get(k) for k in ("counter", "class")], row.get("direction")
    numbers = [row.get(k) for k in ("start_ts", "bin_s", "count")]
    if not all(isinstance(n, str) and _NAME.fullmatch(n) for n in names) or not all(_count(n) for n in numbers):
        return None
    if not isinstance(direction, str) or not _MOVE.fullmatch(direction):
        return None
    observed = row.get("observed_s", 0)
    return row if _finite(observed) else None


def _clean_stats(data: dict[str, Any]) -> dict[str, Any]:
    """Stats keep finite numbers, booleans and short strings under short keys; nothing else."""
    out: dict[str, Any] = {}
    for key, value in list(data.items())[:64]:
        if not isinstance(key, str) or len(key) > 64:
            continue
        if isinstance(value, bool) or (isinstance(value, str) and len(value) <= 128) or _finite(value):
            out[key] = value
    return out


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and abs(value) < 1e15
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT

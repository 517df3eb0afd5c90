"""What `edge collect` accepts from the wire: topic + payload -> a typed record, or a refusal.

Everything a device can send is validated here, before anything touches a database: a payload
that fails is refused with a stable ``reason`` (a metric label), never written. The contract is
the one in docs/mqtt.md (events, state) and docs/collect.md (interval counts: what the device's
``IntervalSink`` publishes, ``IntervalRow.to_json`` through ``topics.interval_payload``). Unknown keys in
an event or interval are kept (``extra``, JSON): devices may add keys without bumping ``"v"``.
Strings must be storable everywhere: no control characters (PostgreSQL text refuses NUL) and
valid UTF-8 (a JSON ``"\\ud800"`` escape would decode to a lone surrogate).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from edgetally.history.rows import MOVEMENT_SEPARATOR
from edgetally.sinks.topics import (
    AVAILABILITY,
    PAYLOAD_VERSION,
    STATES,
    split_device_topic,
)

MAX_PAYLOAD_BYTES = 64 * 1024  # an event is ~250 bytes, stats ~400: anything near this is not ours
MAX_TEXT = 128
MAX_TS = 1e11  # epoch seconds, year 5138: beyond it no database time type is happy
MAX_BIGINT = 2**63 - 1
_DEVICE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # what sinks.topics.sanitize_segment produces
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

LINE_DIRS, ZONE_DIRS = ("in", "out"), ("entered", "exited")
INTERVAL_KINDS = ("line", "zone", "movement")


@dataclass(frozen=True)
class EventRecord:
    device_id: str
    seq: int
    ts: float
    counter: str
    kind: str
    class_name: str
    direction: str
    track_id: int
    score: float
    frame: int
    src_ts: float
    extra: str | None  # JSON object of keys this version does not know, or None
    received_at: float


@dataclass(frozen=True)
class IntervalRecord:
    device_id: str
    counter: str
    kind: str  # line | zone | movement
    class_name: str
    direction: str
    start: float
    end: float
    count: int
    observed_s: float
    frames: int | None
    extra: str | None
    received_at: float


@dataclass(frozen=True)
class StatusRecord:
    """One of the retained device topics: ``field`` is availability, state or stats (JSON text)."""

    device_id: str
    field: Literal["availability", "state", "stats"]
    value: str
    received_at: float


@dataclass(frozen=True)
class Rejected:
    reason: str  # stable, used as a metric label: too_large, bad_json, bad_version, ...
    detail: str


Record = EventRecord | IntervalRecord | StatusRecord
KINDS = ("events", "intervals", "availability", "state", "stats")


class _Bad(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def parse_message(
    prefix: str, topic: str, payload: bytes, received_at: float, max_bytes: int = MAX_PAYLOAD_BYTES
) -> Record | Rejected | None:
    """A validated record, a ``Rejected`` (counted, never stored) or None (not a topic we read)."""
    parts = split_device_topic(prefix, topic)
    if parts is None or parts[1] not in KINDS:
        return None
    device, kind = parts
    try:
        if len(payload) > max_bytes:
            raise _Bad("too_large", f"{len(payload)} bytes > {max_bytes}")
        if not _DEVICE_ID.fullmatch(device) or set(device) == {"."}:
            raise _Bad("bad_device_id", f"device id {device[:80]!r}: expected 1-64 of A-Z a-z 0-9 _ . -")
        if kind in ("availability", "state"):
            word = _word(payload, AVAILABILITY if kind == "availability" else STATES)
            return StatusRecord(device, kind, word, received_at)  # type: ignore[arg-type]
        obj = _json_object(payload)
        if kind == "events":
            return _event(device, obj, received_at)
        if kind == "intervals":
            return _interval(device, obj, received_at)
        _version(obj)
        _number(obj.get("ts"), "ts", 0, MAX_TS)
        _check_strings(obj, "stats")
        return StatusRecord(device, "stats", json.dumps(obj, sort_keys=True, separators=(",", ":")), received_at)
    except _Bad as bad:
        return Rejected(bad.reason, bad.detail)


# -- payload kinds ---------------------------------------------------------------------------------
_EVENT_KEYS = ("v", "seq", "ts", "counter", "kind", "class", "dir", "track_id", "score", "frame", "src_ts")
# The device's IntervalRow.to_json (edgetally.history.rows) through topics.interval_payload. The ISO
# bin_start/bin_end, bin_s, the payload's device and a movement's origin/destination restate other
# keys (the topic's device id is the one stored); zone occupancy and any newer key go to ``extra``.
_INTERVAL_KEYS = (
    "v",
    "start_ts",
    "end_ts",
    "counter",
    "kind",
    "class",
    "direction",
    "count",
    "observed_s",
    "frames",
    "bin_start",
    "bin_end",
    "bin_s",
    "device",
    "origin",
    "destination",
)


def _event(device: str, obj: dict[str, Any], received_at: float) -> EventRecord:
    _version(obj)
    kind = _choice(_need(obj, "kind"), "kind", ("line", "zone"))
    direction = _choice(_need(obj, "dir"), "dir", LINE_DIRS if kind == "line" else ZONE_DIRS)
    return EventRecord(
        device_id=device,
        seq=_int(_need(obj, "seq"), "seq", 1),
        ts=_number(_need(obj, "ts"), "ts", 0, MAX_TS),
        counter=_text(_need(obj, "counter"), "counter"),
        kind=kind,
        class_name=_text(_need(obj, "class"), "class"),
        direction=direction,
        track_id=_int(_need(obj, "track_id"), "track_id", 0),
        score=_number(_need(obj, "score"), "score", 0, 1),
        frame=_int(_need(obj, "frame"), "frame", 0),
        src_ts=_number(_need(obj, "src_ts"), "src_ts", 0, MAX_TS),
        extra=_extra(obj, _EVENT_KEYS),
        received_at=received_at,
    )


def _interval(device: str, obj: dict[str, Any], received_at: float) -> IntervalRecord:
    _version(obj)
    start = _number(_need(obj, "start_ts"), "start_ts", 0, MAX_TS)
    end = _number(_need(obj, "end_ts"), "end_ts", start, MAX_TS)
    if not 0 < end - start <= 86400:
        raise _Bad("bad_field", f"end_ts - start_ts: expected 0 < seconds <= 86400, got {end - start:g}")
    if "bin_s" in obj and _number(obj["bin_s"], "bin_s", 0, 86400) != end - start:
        raise _Bad("bad_field", f"bin_s: expected end_ts - start_ts = {end - start:g}, got {str(obj['bin_s'])[:40]!r}")
    kind = _choice(_need(obj, "kind"), "kind", INTERVAL_KINDS)
    frames = obj.get("frames")
    return IntervalRecord(
        device_id=device,
        counter=_text(_need(obj, "counter"), "counter"),
        kind=kind,
        class_name=_text(_need(obj, "class"), "class"),
        direction=_interval_direction(kind, _need(obj, "direction")),
        start=start,
        end=end,
        count=_int(_need(obj, "count"), "count", 0),
        observed_s=_number(_need(obj, "observed_s"), "observed_s", 0, end - start + 1.0),
        frames=None if frames is None else _int(frames, "frames", 0),
        extra=_extra(obj, _INTERVAL_KEYS),
        received_at=received_at,
    )


def _interval_direction(kind: str, value: Any) -> str:
    """``in``/``out`` (line), ``entered``/``exited`` (zone), ``ORIGIN->DESTINATION`` (movement, ``?`` for
    an open end, as ``edgetally.counting.movements.movement_name`` writes it)."""
    if kind == "line":
        return _choice(value, "direction", LINE_DIRS)
    if kind == "zone":
        return _choice(value, "direction", ZONE_DIRS)
    text = _text(value, "direction")
    origin, sep, destination = text.partition(MOVEMENT_SEPARATOR)
    if not sep or not origin or not destination or MOVEMENT_SEPARATOR in destination:
        raise _Bad("bad_field", f"direction: a movement is ORIGIN{MOVEMENT_SEPARATOR}DESTINATION, got {text[:40]!r}")
    return text


# -- field checks ----------------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise _Bad("bad_json", f"{name} is not a number JSON allows")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # one instance: json.loads(**kw) builds one per call


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        obj = _DECODER.decode(payload.decode("utf-8"))
    except _Bad:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _Bad("bad_json", f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(obj, dict):
        raise _Bad("bad_json", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _word(payload: bytes, allowed: tuple[str, ...]) -> str:
    text = payload.decode("ascii", "replace").strip()
    if text not in allowed:
        raise _Bad("bad_value", f"expected one of {', '.join(allowed)}, got {text[:40]!r}")
    return text


def _version(obj: dict[str, Any]) -> None:
    v = obj.get("v")
    if type(v) is not int or v != PAYLOAD_VERSION:
        raise _Bad("bad_version", f"v: expected {PAYLOAD_VERSION}, got {str(v)[:40]!r}")


def _need(obj: dict[str, Any], key: str) -> Any:
    if key not in obj:
        raise _Bad("missing_field", f"{key}: missing")
    return obj[key]


def _int(value: Any, key: str, low: int) -> int:
    if type(value) is not int or not low <= value <= MAX_BIGINT:
        raise _Bad("bad_field", f"{key}: expected an integer >= {low}, got {str(value)[:40]!r}")
    return value


def _number(value: Any, key: str, low: float, high: float) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
        raise _Bad("bad_field", f"{key}: expected a number in [{low:g}, {high:g}], got {str(value)[:40]!r}")
    return float(value)


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT or not _storable(value):
        raise _Bad("bad_field", f"{key}: expected 1-{MAX_TEXT} printable characters, got {str(value)[:40]!r}")
    return value


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed or not isinstance(value, str):
        raise _Bad("bad_field", f"{key}: expected one of {', '.join(allowed)}, got {str(value)[:40]!r}")
    return str(value)


def _storable(text: str) -> bool:
    if _CONTROL.search(text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_strings(value: Any, where: str) -> None:
    """Every key and string anywhere in ``value`` must be storable as JSON text in PostgreSQL."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not _storable(item):
            raise _Bad("bad_field", f"{where}: a string with control characters or invalid UTF-8")


def _extra(obj: dict[str, Any], known: tuple[str, ...]) -> str | None:
    extra = {k: v for k, v in obj.items() if k not in known}
    if not extra:
        return None
    _check_strings(extra, "extra keys")
    return json.dumps(extra, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

"""What `edge collect` accepts from the wire: a table of payloads -> record or refusal reason."""

from __future__ import annotations

import json

import pytest

from edgetally.collect.messages import (
    EventRecord,
    IntervalRecord,
    Rejected,
    StatusRecord,
    parse_message,
)
from edgetally.history.rows import IntervalRow
from edgetally.sinks.topics import Topics, encode, event_payload, interval_payload
from edgetally.structures import CountEvent

T = 1_800_000_000.0
EVENT = {
    "v": 1,
    "seq": 7,
    "ts": T,
    "counter": "north",
    "kind": "line",
    "class": "car",
    "dir": "in",
    "track_id": 3,
    "score": 0.8,
    "frame": 120,
    "src_ts": 4.8,
}
TI = 1_800_000_000  # a 900 s bin boundary


def device_interval(kind: str = "line", direction: str = "in", **fields: object) -> dict:
    """What a device's IntervalSink publishes for one closed bin: ``IntervalRow.to_json`` through
    ``topics.interval_payload``."""
    row = IntervalRow(
        **{
            "start": TI,
            "bin_s": 900,
            "device": "j1",
            "counter": "north",
            "kind": kind,  # type: ignore[arg-type]
            "class_name": "car",
            "direction": direction,
            "count": 12,
            "frames": 22400,
            "observed_s": 897.5,
            **fields,
        }
    )
    return interval_payload(row.to_json())


INTERVAL = device_interval()


def parse(topic: str, payload: bytes | dict, prefix: str = "edgetally") -> object:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_message(prefix, topic, body, received_at=T + 1)


def reason(result: object) -> str:
    assert isinstance(result, Rejected), f"expected a refusal, got {result!r}"
    return result.reason


def test_the_runners_own_event_payload_round_trips() -> None:
    ev = CountEvent(
        counter="north line",
        kind="line",
        class_name="car",
        direction="out",
        track_id=9,
        frame_index=44,
        timestamp=1.76,
        score=0.91,
    )
    topics = Topics.build("site/edgetally", "junction-3")
    rec = parse(topics.events, encode(event_payload(12, ev, ts=T)), prefix="site/edgetally")
    assert rec == EventRecord("junction-3", 12, T, "north line", "line", "car", "out", 9, 0.91, 44, 1.76, None, T + 1)


def test_the_devices_interval_row_round_trips() -> None:
    rec = parse(Topics.build("edgetally", "j1").intervals, encode(INTERVAL))
    assert rec == IntervalRecord("j1", "north", "line", "car", "in", TI, TI + 900, 12, 897.5, 22400, None, T + 1)


def test_a_zone_rows_occupancy_is_kept_in_extra() -> None:
    payload = device_interval("zone", "entered", count=3, observed_s=900.0, occ_s=1800.0, occupancy_peak=4)
    rec = parse("edgetally/j1/intervals", encode(payload))
    assert isinstance(rec, IntervalRecord) and (rec.kind, rec.direction, rec.count) == ("zone", "entered", 3)
    assert json.loads(rec.extra or "{}") == {"occupancy_mean": 2.0, "occupancy_peak": 4}


@pytest.mark.parametrize("movement", ["west->north", "north->north", "north->?", "?->east"])
def test_movement_rows_keep_origin_to_destination_as_the_direction(movement: str) -> None:
    payload = device_interval("movement", movement, count=5)
    assert payload["origin"] + "->" + payload["destination"] == movement  # restated by the device, not stored twice
    rec = parse("edgetally/j1/intervals", encode(payload))
    assert isinstance(rec, IntervalRecord)
    assert (rec.kind, rec.direction, rec.count, rec.extra) == ("movement", movement, 5, None)


def test_unknown_interval_keys_are_kept_as_json() -> None:
    rec = parse("edgetally/j1/intervals", {**INTERVAL, "lane": 2})
    assert isinstance(rec, IntervalRecord) and json.loads(rec.extra or "{}") == {"lane": 2}


@pytest.mark.parametrize(
    ("leaf", "payload", "field", "value"),
    [
        ("availability", b"online", "availability", "online"),
        ("availability", b"offline", "availability", "offline"),
        ("state", b"degraded", "state", "degraded"),
        (
            "stats",
            json.dumps({"v": 1, "ts": T, "fps": 12.5, "outbox_dropped": 0}).encode(),
            "stats",
            '{"fps":12.5,"outbox_dropped":0,"ts":1800000000.0,"v":1}',
        ),
    ],
)
def test_device_state_topics(leaf: str, payload: bytes, field: str, value: str) -> None:
    assert parse(f"edgetally/j1/{leaf}", payload) == StatusRecord("j1", field, value, T + 1)  # type: ignore[arg-type]


def test_extra_event_keys_are_kept_as_json() -> None:
    rec = parse("edgetally/j1/events", {**EVENT, "movement": {"from": "N", "to": "E"}})
    assert isinstance(rec, EventRecord) and json.loads(rec.extra or "") == {"movement": {"from": "N", "to": "E"}}


@pytest.mark.parametrize(
    "topic",
    [
        "edgetally/j1/counter/north/car/in",
        "edgetally/j1/snapshot",
        "edgetally/j1/cmd/reset",
        "other/j1/events",
        "edgetally/events",
        "edgetally/j1/events/extra",
        "homeassistant/device/j1/config",
    ],
)
def test_topics_the_collector_does_not_read_are_ignored(topic: str) -> None:
    assert parse(topic, EVENT) is None


BAD = [
    # (name, topic, payload, reason)
    ("malformed JSON", "edgetally/j1/events", b'{"v": 1, "seq": ', "bad_json"),
    ("not UTF-8", "edgetally/j1/events", b'\xff\xfe{"v":1}', "bad_json"),
    ("a JSON array", "edgetally/j1/events", b"[1, 2]", "bad_json"),
    ("NaN", "edgetally/j1/events", json.dumps({**EVENT, "ts": float("nan")}).encode(), "bad_json"),
    ("deep nesting", "edgetally/j1/events", b"[" * 30_000 + b"]" * 30_000, "bad_json"),
    ("10 MB", "edgetally/j1/events", b'{"v":1,"pad":"' + b"x" * 10_000_000 + b'"}', "too_large"),
    ("schema v2", "edgetally/j1/events", {**EVENT, "v": 2}, "bad_version"),
    ("v as a string", "edgetally/j1/events", {**EVENT, "v": "1"}, "bad_version"),
    ("no version", "edgetally/j1/stats", {"ts": T}, "bad_version"),
    ("SQL in the device id", "edgetally/x';DROP TABLE events;--/events", EVENT, "bad_device_id"),
    ("path in the device id", "edgetally/../events", EVENT, "bad_device_id"),
    ("spaces in the device id", "edgetally/junction 3/events", EVENT, "bad_device_id"),
    ("65-character device id", "edgetally/" + "a" * 65 + "/events", EVENT, "bad_device_id"),
    ("missing seq", "edgetally/j1/events", {k: v for k, v in EVENT.items() if k != "seq"}, "missing_field"),
    ("seq 0", "edgetally/j1/events", {**EVENT, "seq": 0}, "bad_field"),
    ("negative seq", "edgetally/j1/events", {**EVENT, "seq": -5}, "bad_field"),
    ("seq as a bool", "edgetally/j1/events", {**EVENT, "seq": True}, "bad_field"),
    ("seq as a float", "edgetally/j1/events", {**EVENT, "seq": 7.0}, "bad_field"),
    ("seq beyond bigint", "edgetally/j1/events", {**EVENT, "seq": 2**63}, "bad_field"),
    ("ts as a string", "edgetally/j1/events", {**EVENT, "ts": "yesterday"}, "bad_field"),
    ("ts in year 5000+", "edgetally/j1/events", {**EVENT, "ts": 1e12}, "bad_field"),
    ("score above 1", "edgetally/j1/events", {**EVENT, "score": 1.5}, "bad_field"),
    ("zone direction on a line", "edgetally/j1/events", {**EVENT, "dir": "entered"}, "bad_field"),
    ("unknown kind", "edgetally/j1/events", {**EVENT, "kind": "polygon"}, "bad_field"),
    ("NUL in the counter", "edgetally/j1/events", {**EVENT, "counter": "a\u0000b"}, "bad_field"),
    (
        "lone surrogate in the class",
        "edgetally/j1/events",
        json.dumps({**EVENT, "class": "SURROGATE"}).replace("SURROGATE", "\\ud800").encode(),
        "bad_field",
    ),
    ("NUL in an extra key", "edgetally/j1/events", {**EVENT, "note": "x\u0000"}, "bad_field"),
    ("200-char counter", "edgetally/j1/events", {**EVENT, "counter": "c" * 200}, "bad_field"),
    ("interval end before start", "edgetally/j1/intervals", {**INTERVAL, "end_ts": TI - 1}, "bad_field"),
    (
        "interval longer than a day",
        "edgetally/j1/intervals",
        {**INTERVAL, "end_ts": TI + 90_000, "bin_s": 90_000},
        "bad_field",
    ),
    ("interval bin_s not end - start", "edgetally/j1/intervals", {**INTERVAL, "bin_s": 60}, "bad_field"),
    (
        "interval without kind",
        "edgetally/j1/intervals",
        {k: v for k, v in INTERVAL.items() if k != "kind"},
        "missing_field",
    ),
    ("interval of an unknown kind", "edgetally/j1/intervals", {**INTERVAL, "kind": "polygon"}, "bad_field"),
    ("zone direction on a line interval", "edgetally/j1/intervals", {**INTERVAL, "direction": "entered"}, "bad_field"),
    (
        "movement direction on a line interval",
        "edgetally/j1/intervals",
        {**INTERVAL, "direction": "north->east"},
        "bad_field",
    ),
    ("movement without ->", "edgetally/j1/intervals", device_interval("movement", "north"), "bad_field"),
    ("movement with an empty end", "edgetally/j1/intervals", device_interval("movement", "north->"), "bad_field"),
    ("movement with two ->", "edgetally/j1/intervals", device_interval("movement", "a->b->c"), "bad_field"),
    (
        "interval in a made-up start/end/dir form",
        "edgetally/j1/intervals",
        {
            "v": 1,
            "start": T,
            "end": T + 900,
            "counter": "north",
            "kind": "line",
            "class": "car",
            "dir": "in",
            "count": 1,
            "observed_s": 900.0,
        },
        "missing_field",
    ),
    ("interval observed more than its length", "edgetally/j1/intervals", {**INTERVAL, "observed_s": 5000}, "bad_field"),
    ("negative interval count", "edgetally/j1/intervals", {**INTERVAL, "count": -1}, "bad_field"),
    ("availability garbage", "edgetally/j1/availability", b"maybe", "bad_value"),
    ("state garbage", "edgetally/j1/state", b"'; DROP TABLE devices; --", "bad_value"),
    ("stats not JSON", "edgetally/j1/stats", b"fps=12", "bad_json"),
]


@pytest.mark.parametrize(("topic", "payload", "why"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_a_reason(topic: str, payload: bytes | dict, why: str) -> None:
    assert reason(parse(topic, payload)) == why

"""The interval sink publishing through the MQTT sink's durable outbox, on a real mosquitto: closed bins
(per-bin messages + retained latest), movements, a broker outage in the middle (nothing lost, nothing
twice), the history kept without MQTT, and the sums equal to the events they summarise."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edgetally.config.models import IntervalSettings, MovementSettings
from edgetally.history.rows import stored_rows
from edgetally.history.store import HistoryStore
from edgetally.hooks import CounterInfo, RunContext
from edgetally.sinks.intervals import IntervalSink
from edgetally.sinks.mqtt import MqttSettings, MqttSink
from edgetally.structures import CountEvent, CountTotals
from tests.mqtt_support import MOSQUITTO, Mosquitto, Subscriber, retained, wait_until

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs mosquitto (scripts/test.sh installs it as root)")

T0 = 1_800_000_000


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _context() -> RunContext:
    return RunContext(
        "dev1",
        [CounterInfo("L", "line", ("in", "out")), CounterInfo("Z", "zone", ("entered", "exited"))],
        ["car", "bus"],
        CountTotals(),
    )


def _events(n: int) -> list[CountEvent]:
    """Line crossings by tracks 1..n; every third track also enters and leaves the zone."""
    out = []
    for i in range(1, n + 1):
        out.append(CountEvent("L", "line", "car" if i % 4 else "bus", "in" if i % 2 else "out", i, i, float(i)))
        if i % 3 == 0:
            out += [
                CountEvent("Z", "zone", "car", "entered", i, i, float(i)),
                CountEvent("Z", "zone", "car", "exited", i, i, i + 0.5),
            ]
    return out


def _run(
    sink: IntervalSink, mqtt: MqttSink | None, clock: Clock, events: list[CountEvent], start: float, step: float
) -> None:
    """What the pipeline does: per frame, events to every sink (MQTT first), then the per-frame hook."""
    ctx = _context()
    for k, event in enumerate(events):
        clock.t = start + k * step
        cumulative = ctx.totals.add(event)
        if mqtt is not None:
            mqtt.event(event, cumulative)
        sink.event(event, cumulative)
        sink.observe([event.track_id], event.timestamp)


def _sums(rows: list[dict]) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for r in rows:
        key = (r["counter"], r["class"], r["direction"])
        out[key] = out.get(key, 0) + r["count"]
    return {k: v for k, v in out.items() if v}


def _truth(events: list[CountEvent]) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for e in events:
        out[(e.counter, e.class_name, e.direction)] = out.get((e.counter, e.class_name, e.direction), 0) + 1
    return out


def _mqtt(port: int, tmp: Path) -> MqttSink:
    return MqttSink(
        MqttSettings(
            url=f"mqtt://127.0.0.1:{port}",
            device_id="dev1",
            outbox=tmp / "outbox.sqlite",
            outbox_sync="normal",
            homeassistant=False,
            reconnect_min_s=0.2,
            reconnect_max_s=1.0,
            close_timeout_s=5.0,
        )
    )


def test_closed_bins_published_through_the_outbox_across_a_broker_outage(tmp_path: Path) -> None:
    # The broker keeps the subscriber's session across its restart (persistence, a fixed client id):
    # rows the device delivers before the subscriber is back are queued for it, not lost.
    broker = Mosquitto(tmp_path / "mq", persistence=True).start()
    port = broker.port
    sub = Subscriber(port, "edgetally/dev1/#", client_id="bins-watcher").start()
    clock = Clock(T0)
    mqtt = _mqtt(port, tmp_path)
    settings = IntervalSettings(bin="1m", history=tmp_path / "history-dev1.sqlite", sync="normal")
    sink = IntervalSink(settings, device_id="dev1", publisher=mqtt, declared_classes=["car"], clock=clock, timer_s=None)
    ctx = _context()
    events = _events(120)
    try:
        mqtt.open(ctx)
        sink.open(ctx)
        assert wait_until(lambda: mqtt.connected, 10)
        _run(sink, mqtt, clock, events[:60], T0, 2.0)  # ~2 min at one event per 2 s
        broker.stop(
            kill=False
        )  # the broker goes away (saving sessions); counting and bin closing go on into the outbox
        before = sub.on("edgetally/dev1/intervals")
        sub.stop()
        _run(sink, mqtt, clock, events[60:], T0 + 120.0 + 1, 2.0)
        clock.t += 61.0
        sink.observe([], None)  # one more frame closes the last bin with events
        assert mqtt.outbox is not None and mqtt.outbox.message_depth > 0  # held while the broker is away
        broker = Mosquitto(tmp_path / "mq", port=port, persistence=True).start()
        sub = Subscriber(port, "edgetally/dev1/#", client_id="bins-watcher").start()
        assert wait_until(lambda: mqtt.outbox.message_depth == 0, 20), "interval rows not delivered after the outage"

        def received() -> list[dict]:
            # A resumed session may resend (DUP) a row the first subscriber got just before the broker
            # died: that is MQTT's at-least-once, not the device publishing a bin twice.
            resent = {p for t, p in sub.redelivered if t == "edgetally/dev1/intervals"}
            after = [p for p in sub.on("edgetally/dev1/intervals") if not (p in resent and p in before)]
            return [json.loads(p) for p in before + after]

        assert wait_until(lambda: _sums(received()) == _truth(events), 10), (_sums(received()), _truth(events))
        time.sleep(0.3)  # nothing more may come (a duplicate would show below)
        rows = received()
        keys = [(r["start_ts"], r["counter"], r["class"], r["direction"]) for r in rows]
        assert len(keys) == len(set(keys)), "a bin row arrived twice"
        assert _sums(rows) == _truth(events)  # every event in exactly one published bin
        assert {r["bin_s"] for r in rows} == {60} and all(r["device"] == "dev1" and r["v"] == 1 for r in rows)
        zone = [r for r in rows if r["counter"] == "Z"]
        assert zone and all("occupancy_mean" in r and "occupancy_peak" in r for r in zone)
        last = max(r["start_ts"] for r in rows)
        held = retained(port, "edgetally/dev1/interval/#")
        assert json.loads(held["edgetally/dev1/interval/L/car/in"])["start_ts"] == last
    finally:
        sink.close()
        mqtt.close()
        sub.stop()
        broker.stop()
    history = HistoryStore(tmp_path / "history-dev1.sqlite", "dev1")
    assert _sums([r.to_json() for r in stored_rows(history)]) == _truth(events)  # the device's own copy agrees


def test_history_kept_without_mqtt_and_continued_after_a_restart(tmp_path: Path) -> None:
    clock = Clock(T0 + 5)
    settings = IntervalSettings(bin="15m", history=tmp_path / "h.sqlite", sync="normal")
    events = _events(40)
    first = IntervalSink(settings, device_id="dev1", clock=clock, timer_s=None)
    first.open(_context())
    _run(first, None, clock, events[:25], T0 + 5, 3.0)
    first.close()  # stopped in the middle of the 15 min bin
    second = IntervalSink(settings, device_id="dev1", clock=clock, timer_s=None)
    second.open(_context())
    _run(second, None, clock, events[25:], T0 + 300, 3.0)
    clock.t = T0 + 901
    second.observe([], None)
    second.close()
    store = HistoryStore(tmp_path / "h.sqlite", "dev1")
    bins = store.bins()
    assert [(b.start - T0, b.closed) for b in bins] == [(0, True), (900, False)]  # one bin across the restart
    assert _sums([r.to_json() for r in stored_rows(store)]) == _truth(events)


def test_movements_counted_per_bin_and_published(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq").start()
    sub = Subscriber(broker.port, "edgetally/dev1/#").start()
    clock = Clock(T0)
    mqtt = _mqtt(broker.port, tmp_path)
    settings = IntervalSettings(bin="1m", history=tmp_path / "history-dev1.sqlite", sync="normal")
    junction = MovementSettings(name="X", approaches=["L", "M"])
    sink = IntervalSink(
        settings, [junction], device_id="dev1", publisher=mqtt, forget_after_s=2.0, clock=clock, timer_s=None
    )
    ctx = RunContext(
        "dev1",
        [CounterInfo("L", "line", ("in", "out")), CounterInfo("M", "line", ("in", "out"))],
        ["car"],
        CountTotals(),
    )
    crossings = [
        CountEvent("L", "line", "car", "in", 1, 10, 1.0),
        CountEvent("M", "line", "car", "out", 1, 30, 3.0),
        CountEvent("M", "line", "car", "in", 2, 40, 4.0),
    ]
    try:
        mqtt.open(ctx)
        sink.open(ctx)
        for _k, e in enumerate(crossings):
            clock.t = T0 + e.timestamp
            mqtt.event(e, ctx.totals.add(e))
            sink.event(e, 1)
            sink.observe([e.track_id], e.timestamp)
        for t in (5.0, 10.0):  # both tracks gone: track 1 decided L->M, track 2 M->? (never left)
            clock.t = T0 + t
            sink.observe([], t)
        clock.t = T0 + 61
        sink.observe([], 61.0)
        assert wait_until(lambda: len(sub.on("edgetally/dev1/movements")) == 2, 10)
        moved = sorted(json.loads(p)["movement"] for p in sub.on("edgetally/dev1/movements"))
        assert moved == ["L->M", "M->?"]

        def od() -> dict[str, int]:
            return {
                r["direction"]: r["count"]
                for r in map(json.loads, sub.on("edgetally/dev1/intervals"))
                if r["counter"] == "X"
            }

        assert wait_until(lambda: od() == {"L->M": 1, "M->?": 1}, 10), od()
        rows = [json.loads(p) for p in sub.on("edgetally/dev1/intervals")]
        assert {(r["origin"], r["destination"]) for r in rows if r["counter"] == "X"} == {("L", "M"), ("M", "?")}
    finally:
        sink.close()
        mqtt.close()
        sub.stop()
        broker.stop()

"""MqttSink against a REAL mosquitto (started here on a free loopback port, killed after)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from mqtt_support import (
    MOSQUITTO,
    Mosquitto,
    Subscriber,
    bridge_to,
    feed,
    make_context,
    make_event,
    retained,
    wait_until,
)

from edgetally.hooks import RunStats
from edgetally.sinks.mqtt import MqttSettings, MqttSink
from edgetally.sinks.outbox import Outbox

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto binary not installed (apt-get install mosquitto)")

EVENTS = "edgetally/dev1/events"


def settings(url: str, tmp: Path, **kw: object) -> MqttSettings:
    base = dict(
        url=url, outbox=tmp / "outbox.sqlite", device_id="dev1", reconnect_min_s=1, reconnect_max_s=2, close_timeout_s=5
    )
    base.update(kw)
    return MqttSettings(**base)


def seqs(payloads: list[bytes]) -> list[int]:
    return [json.loads(p)["seq"] for p in payloads]


def first_occurrences(values: list[int]) -> list[int]:
    seen: set[int] = set()
    return [v for v in values if not (v in seen or seen.add(v))]


def expected_counters(ctx) -> dict[str, bytes]:
    return {
        f"edgetally/dev1/counter/{c}/{k}/{d}": str(n).encode()
        for c, per in ctx.totals.values.items()
        for k, dirs in per.items()
        for d, n in dirs.items()
    }


@pytest.fixture
def broker(tmp_path: Path):
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def test_publish_events_counters_state_discovery(broker: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(broker.port).start()
    ctx = make_context()
    sink = MqttSink(settings(broker.url, tmp_path))
    sink.open(ctx)
    events = [make_event(i) for i in range(1, 51)]
    feed(sink, ctx, events)
    assert wait_until(lambda: len(sub.on(EVENTS)) == 50)
    got = [json.loads(p) for p in sub.on(EVENTS)]
    assert [g["seq"] for g in got] == list(range(1, 51))
    assert [(g["class"], g["dir"], g["track_id"], g["frame"]) for g in got] == [
        (e.class_name, e.direction, e.track_id, e.frame_index) for e in events
    ]
    assert sub.on("edgetally/dev1/availability")[0] == b"online"
    # The subscriber can see the last event before the sink has its PUBACK: wait for the outbox
    # to empty, so the stats below report the depth after delivery (0), not a race.
    assert wait_until(lambda: sink.outbox is not None and sink.outbox.depth == 0)
    sink.stats(RunStats(frames=100, fps=24.5, infer_ms_p50=11.0, dropped_frames=0, camera_age_s=0.1, reconnects=0))
    assert wait_until(lambda: sub.last("edgetally/dev1/stats") is not None)
    sink.close()
    held = retained(broker.port, "#")
    counters = {t: p for t, p in held.items() if "/counter/" in t}
    assert counters == expected_counters(ctx)
    assert held["edgetally/dev1/availability"] == b"stopped" and held["edgetally/dev1/state"] == b"ready"
    disc = json.loads(held["homeassistant/device/dev1/config"])
    assert "dev1_line1_car_in" in disc["cmps"] and "dev1_gate_person_out" in disc["cmps"]
    stats = json.loads(sub.last("edgetally/dev1/stats"))
    assert stats["v"] == 1 and stats["fps"] == 24.5 and stats["outbox_depth"] == 0
    sub.stop()


def test_outbox_survives_restart_seq_continues_counters_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = Mosquitto(tmp_path / "broker")  # not started yet: the first run has no broker at all
    caplog.set_level(logging.WARNING)
    ctx1 = make_context()
    sink = MqttSink(settings(down.url, tmp_path, close_timeout_s=0))
    sink.open(ctx1)
    feed(sink, ctx1, [make_event(i) for i in range(1, 21)])
    assert wait_until(lambda: "unreachable" in caplog.text, 5)
    sink.close()
    assert Outbox(tmp_path / "outbox.sqlite").depth == 20

    down.start()
    sub = Subscriber(down.port).start()
    ctx2 = make_context()
    sink = MqttSink(settings(down.url, tmp_path))
    sink.open(ctx2)
    assert ctx2.totals.values == ctx1.totals.values  # restored before the first frame
    feed(sink, ctx2, [make_event(i) for i in range(21, 26)])
    assert wait_until(lambda: len(sub.on(EVENTS)) >= 25)
    assert seqs(sub.on(EVENTS)) == list(range(1, 26))
    sink.close()
    assert retained(down.port, "edgetally/dev1/counter/#") == expected_counters(ctx2)
    sub.stop()
    down.stop()


def test_broker_killed_mid_stream_loses_nothing(tmp_path: Path) -> None:
    """Broker SIGKILLed for 3 s (no persistence) while events keep coming at ~100/s. The events are
    watched on a second broker it bridges to: a subscriber on the restarted broker itself could
    subscribe after the sink has replayed its outbox (a clean broker keeps no subscriptions)."""
    observer = Mosquitto(tmp_path / "observer").start()
    sub = Subscriber(observer.port, EVENTS).start()
    broker = Mosquitto(tmp_path / "broker", extra=bridge_to(observer.port, EVENTS, "sink-bridge")).start()
    ctx = make_context()
    sink = MqttSink(settings(broker.url, tmp_path))
    sink.open(ctx)
    n, kill_at, restart_at = 300, 80, 220
    for i in range(1, n + 1):
        feed(sink, ctx, [make_event(i)])
        if i == kill_at:
            broker.stop()
            t_kill = time.monotonic()
        if i == restart_at:
            time.sleep(max(0.0, 3.0 - (time.monotonic() - t_kill)))
            broker.start()
        time.sleep(0.01)
    assert wait_until(lambda: set(seqs(sub.on(EVENTS))) == set(range(1, n + 1)), 20)
    got = seqs(sub.on(EVENTS))
    assert first_occurrences(got) == list(range(1, n + 1))  # none lost, replayed in order
    assert sink.reconnects >= 1
    sink.close()
    assert retained(broker.port, "edgetally/dev1/counter/#") == expected_counters(ctx)
    sub.stop()
    broker.stop()
    observer.stop()


def test_wrong_password_logs_clearly_and_retries(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    b = Mosquitto(tmp_path / "broker", users={"alice": "right"}).start()
    (tmp_path / "pw").write_text("wrong\n")
    caplog.set_level(logging.ERROR, logger="edgetally.sinks.mqtt")
    ctx = make_context()
    sink = MqttSink(settings(f"mqtt://alice@127.0.0.1:{b.port}", tmp_path, password_file=tmp_path / "pw"))
    sink.open(ctx)
    feed(sink, ctx, [make_event(1)])
    refused = lambda: [r for r in caplog.records if "refused the connection" in r.getMessage()]  # noqa: E731
    assert wait_until(lambda: len(refused()) >= 2, 8), caplog.text  # it keeps retrying
    msg = refused()[0].getMessage()
    assert "Not authorized" in msg and "password" in msg
    assert not sink.connected and sink.outbox.depth == 1
    sink.close()
    b.stop()


def test_right_password_connects(tmp_path: Path) -> None:
    b = Mosquitto(tmp_path / "broker", users={"alice": "right"}).start()
    (tmp_path / "pw").write_text("right\n")
    sink = MqttSink(settings(f"mqtt://alice@127.0.0.1:{b.port}", tmp_path, password_file=tmp_path / "pw"))
    sink.open(make_context())
    assert wait_until(lambda: sink.connected, 5)
    sink.close()
    b.stop()


def test_broker_restart_without_persistence_republishes_retained(broker: Mosquitto, tmp_path: Path) -> None:
    ctx = make_context()
    sink = MqttSink(settings(broker.url, tmp_path))
    sink.open(ctx)
    feed(sink, ctx, [make_event(i) for i in range(1, 11)])
    assert wait_until(lambda: sink.outbox.depth == 0)
    broker.stop()
    broker.start()  # empty broker: no retained messages at all
    assert wait_until(lambda: sink.connected, 10)
    want = {
        "homeassistant/device/dev1/config",
        "edgetally/dev1/availability",
        "edgetally/dev1/state",
        *expected_counters(ctx),
    }
    assert wait_until(lambda: want <= set(retained(broker.port, "#", settle=0.2)), 10)
    held = retained(broker.port, "#")
    assert held["edgetally/dev1/availability"] == b"online"
    assert {t: p for t, p in held.items() if "/counter/" in t} == expected_counters(ctx)
    sink.close()


def test_home_assistant_online_resends_discovery(broker: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(broker.port, "homeassistant/device/#").start()
    sink = MqttSink(settings(broker.url, tmp_path))
    sink.open(make_context())
    topic = "homeassistant/device/dev1/config"
    assert wait_until(lambda: len(sub.on(topic)) == 1)
    sub.client.publish("homeassistant/status", "online", qos=1)
    assert wait_until(lambda: len(sub.on(topic)) == 2)
    sink.close()
    sub.stop()


def test_commands_reset_snapshot_reload(broker: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(broker.port).start()
    commands: list[dict[str, object]] = []
    ctx = make_context(commands=commands)
    sink = MqttSink(settings(broker.url, tmp_path))
    sink.open(ctx)
    feed(sink, ctx, [make_event(i) for i in range(1, 7)])
    topic = "edgetally/dev1/counter/line1/car/in"
    assert wait_until(lambda: sub.last(topic) == b"2")
    send = lambda name, payload: sub.client.publish(f"edgetally/dev1/cmd/{name}", payload, qos=1)  # noqa: E731
    results = lambda: [json.loads(p) for p in sub.on("edgetally/dev1/cmd/result")]  # noqa: E731
    send("reset", '{"counter": "nope", "id": "a"}')
    send("reset", '{"counter": "line1", "id": "b"}')
    send("reload", "")
    n_before = len(sub.on(topic))
    send("snapshot", "{}")
    assert wait_until(lambda: len(results()) == 4)
    assert [(r["cmd"], r["ok"], r.get("id")) for r in results()] == [
        ("reset", False, "a"),
        ("reset", True, "b"),
        ("reload", True, None),
        ("snapshot", True, None),
    ]
    assert "unknown counter" in results()[0]["error"]
    assert commands == [{"cmd": "reset", "counter": "line1"}, {"cmd": "reload"}]
    assert wait_until(lambda: len(sub.on(topic)) > n_before)  # snapshot re-published it
    # The pipeline applies the reset on its thread, then tells the sink:
    ctx.totals.values["line1"] = {}
    sink.totals_changed()
    assert wait_until(lambda: sub.last(topic) == b"0")
    sink.close()
    assert set(Outbox(tmp_path / "outbox.sqlite").counters().values()) == {0}
    sub.stop()


def test_outbox_overflow_is_counted_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    b = Mosquitto(tmp_path / "broker")
    ctx = make_context()
    sink = MqttSink(settings(b.url, tmp_path, outbox_max_events=10))
    sink.open(ctx)
    feed(sink, ctx, [make_event(i) for i in range(1, 31)])
    assert sink.outbox.dropped == 20 and "dropped" in caplog.text
    b.start()
    sub = Subscriber(b.port).start()
    assert wait_until(lambda: sink.connected, 10)
    sink.stats(RunStats(frames=1, fps=1.0, infer_ms_p50=1.0, dropped_frames=0, camera_age_s=0.0, reconnects=0))
    assert wait_until(lambda: sub.last("edgetally/dev1/stats") is not None)
    assert json.loads(sub.last("edgetally/dev1/stats"))["outbox_dropped"] == 20
    assert wait_until(lambda: len(sub.on(EVENTS)) == 10)
    assert seqs(sub.on(EVENTS)) == list(range(21, 31))  # the newest 10 kept, oldest dropped
    sink.close()
    assert retained(b.port, "edgetally/dev1/counter/#") == expected_counters(ctx)  # counts all there
    sub.stop()
    b.stop()

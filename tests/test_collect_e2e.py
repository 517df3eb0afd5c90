"""`edge collect` end to end with real parts: mosquitto, PostgreSQL (or SQLite) and simulated
devices that publish through the runner's own MqttSink + outbox. A handful of devices, seconds each;
the 200-device figures are benchmarks/fleet.py's job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from collect_support import Device, collector, event_summary, query, wait_stored
from mqtt_support import MOSQUITTO, Mosquitto, wait_until

from edgetally.config.models import IntervalSettings, MovementSettings
from edgetally.history.rows import stored_rows
from edgetally.history.store import HistoryStore
from edgetally.hooks import CounterInfo, RunContext, RunStats
from edgetally.sinks.intervals import IntervalSink
from edgetally.sinks.topics import Topics, encode, interval_payload
from edgetally.structures import CountEvent, CountTotals

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed (scripts/test.sh installs it)")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker", persistence=True).start()
    yield b
    b.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'counts.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def devices(broker: Mosquitto, tmp: Path, n: int) -> list[Device]:
    return [Device(f"dev{i}", broker.url, tmp) for i in range(n)]


def assert_exactly(db_url: str, fleet: list[Device]) -> None:
    """Every event each device counted is one row: seq 1..sent, nothing twice, nothing missing."""
    assert event_summary(db_url) == {d.name: (d.sent, d.sent, 1, d.sent) for d in fleet}
    assert query(db_url, "SELECT count(*) FROM seq_gaps") == [(0,)]


def test_a_fleet_lands_in_the_database_exactly_once(broker: Mosquitto, db_url: str, tmp_path: Path) -> None:
    col = collector(broker.url, db_url, tmp_path)
    fleet = devices(broker, tmp_path, 3)
    try:
        for d in fleet:
            d.emit(40)
            d.sink.stats(
                RunStats(frames=1000, fps=12.5, infer_ms_p50=20.0, dropped_frames=0, camera_age_s=0.1, reconnects=0)
            )
        assert wait_stored([col], 120, 20), col.metrics.render()
        assert wait_until(lambda: query(db_url, "SELECT count(*) FROM devices WHERE stats IS NOT NULL") == [(3,)], 10)
        for d in fleet:
            d.close()
        assert wait_until(
            lambda: query(db_url, "SELECT count(*) FROM devices WHERE availability = 'stopped'") == [(3,)], 10
        )
        assert wait_until(lambda: query(db_url, "SELECT count(*) FROM devices WHERE checked_seq = 40") == [(3,)], 10)
    finally:
        col.stop()
    assert_exactly(db_url, fleet)
    assert col.metrics.total("rejected_total") == 0
    per_dir = dict(query(db_url, "SELECT dir, sum(count) FROM event_counts_15m GROUP BY dir"))
    assert {k: int(v) for k, v in per_dir.items()} == {"in": 60, "out": 60}


def publish_raw(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def event(seq: int, ts: float, **kw: object) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "seq": seq,
            "ts": ts,
            "counter": "north",
            "kind": "line",
            "class": "car",
            "dir": "in",
            "track_id": seq,
            "score": 0.9,
            "frame": seq,
            "src_ts": 1.0,
            **kw,
        }
    ).encode()


WIRE = [
    ("edgetally/j1/events", b'{"v": 1, "seq": 3, ', "bad_json"),
    ("edgetally/j1/events", "v2", "bad_version"),
    ("edgetally/j1';DELETE FROM events;--/events", "good", "bad_device_id"),
    ("edgetally/../events", "good", "bad_device_id"),
    ("edgetally/j1/events", "backwards", "seq_backwards"),
    ("edgetally/j1/events", b'{"v":1,"pad":"' + b"x" * 10_000_000 + b'"}', "too_large"),
]


def test_bad_input_on_the_wire_is_refused_counted_and_never_stored(
    broker: Mosquitto, pg_url: str, tmp_path: Path
) -> None:
    col = collector(broker.url, pg_url, tmp_path)
    now = time.time()
    payloads = {"v2": event(4, now, v=2), "good": event(5, now), "backwards": event(2, now + 60)}
    try:
        assert wait_until(lambda: col.connected, 10)
        publish_raw(broker, [("edgetally/j1/events", event(10, now))])  # the device's newest event so far
        assert wait_stored([col], 1, 10)
        publish_raw(broker, [(t, payloads[p] if isinstance(p, str) else p) for t, p, _ in WIRE])
        publish_raw(broker, [("edgetally/j1/events", event(11, now + 1))])  # still alive and storing
        assert wait_stored([col], 2, 20)
        assert wait_until(lambda: col.metrics.total("rejected_total") >= len(WIRE), 10)
        assert col.health() is None
    finally:
        col.stop()
    expected: dict[str, int] = {}
    for _, _, why in WIRE:
        expected[why] = expected.get(why, 0) + 1
    assert col.metrics.by_label("rejected_total") == expected
    assert query(pg_url, "SELECT device_id, seq FROM events ORDER BY seq") == [("j1", 10), ("j1", 11)]
    assert query(pg_url, "SELECT device_id FROM devices") == [("j1",)]


def test_a_devices_interval_sink_lands_in_interval_counts(broker: Mosquitto, db_url: str, tmp_path: Path) -> None:
    """The device's own IntervalSink (1-minute bins, a zone, a junction) publishing through its MqttSink's
    outbox: every closed bin's rows are stored as the device computed them (counts, observed seconds,
    frames, zone occupancy, movements), a redelivered row changes nothing."""
    t0 = 1_800_000_000  # a bin boundary
    clock = [float(t0)]
    dev = Device("j1", broker.url, tmp_path)
    ctx = RunContext(
        "j1",
        [
            CounterInfo("line1", "line", ("in", "out")),
            CounterInfo("gate", "line", ("in", "out")),
            CounterInfo("Z", "zone", ("entered", "exited")),
        ],
        ["car"],
        CountTotals(),
    )
    history = tmp_path / "history-j1.sqlite"
    sink = IntervalSink(
        IntervalSettings(bin="1m", history=history, sync="normal"),
        [MovementSettings(name="junction", approaches=["line1", "gate"])],
        device_id="j1",
        publisher=dev.sink,
        declared_classes=["car"],
        clock=lambda: clock[0],
        timer_s=None,
    )
    events = {
        2 * k + s: CountEvent(c, "line", "car", d, k, 2 * k + s, 2.0 * k + s)
        for k in range(1, 5)
        for s, c, d in ((0, "line1", "in"), (1, "gate", "out"))
    }  # 4 cars line1 -> gate
    events[12] = CountEvent("Z", "zone", "car", "entered", 9, 12, 12.0)
    events[22] = CountEvent("Z", "zone", "car", "exited", 9, 22, 22.0)
    events[70] = CountEvent("line1", "line", "car", "out", 5, 70, 70.0)  # bin 2: a car leaving by line1 (?->line1)
    col = collector(broker.url, db_url, tmp_path)
    try:
        sink.open(ctx)
        assert wait_until(lambda: col.connected and dev.sink.connected, 10)
        # a frame each second: bin 1 fully observed; bin 2 seen for 29 s, then the camera is out until t0 + 125
        for second in [*range(0, 90), 125]:
            clock[0] = t0 + second
            ev = events.get(second)
            if ev is not None:
                cumulative = ctx.totals.add(ev)
                dev.sink.event(ev, cumulative)
                sink.event(ev, cumulative)
            sink.observe([], float(second))
        rows = 7 + 8  # line1, gate: in/out; Z: entered/exited; line1->gate; bin 2 also ?->line1 (a key once seen)
        assert wait_until(lambda: col.metrics.total("stored_total", "intervals") == rows, 20), col.metrics.render()
        first = Topics.build("edgetally", "j1").intervals
        publish_raw(broker, [(first, encode(interval_payload(stored_rows(HistoryStore(history, "j1"))[0].to_json())))])
        assert wait_until(
            lambda: col.metrics.total("messages_total", "intervals") == rows + 1 and col.queue_depth() == 0, 10
        )
    finally:
        sink.close()
        dev.close()
        col.stop()
    assert col.metrics.total("rejected_total") == 0 and col.metrics.total("stored_total", "intervals") == rows
    start = "bin_start" if db_url.startswith("sqlite") else "extract(epoch FROM bin_start)"
    stored = {
        (c, cls, d, int(s)): (k, int(n), float(o), int(f), json.loads(x) if isinstance(x, str) else x)
        for c, cls, d, s, k, n, o, f, x in query(
            db_url, f"SELECT counter, class, dir, {start}, kind, count, observed_s, frames, extra FROM interval_counts"
        )
    }
    device = {
        (r.counter, r.class_name, r.direction, r.start): r
        for r in stored_rows(HistoryStore(history, "j1"))
        if r.start < t0 + 120
    }
    # a key first counted in bin 2 was unknown when bin 1 was published; the device's history reads it 0 there
    unpublished = ("junction", "car", "?->line1", t0)
    assert device.keys() - stored.keys() == {unpublished} and device[unpublished].count == 0
    for key in stored:
        r = device[key]
        occupancy = (
            {"occupancy_mean": r.to_json()["occupancy_mean"], "occupancy_peak": r.occupancy_peak}
            if r.kind == "zone"
            else None
        )
        assert stored[key] == (r.kind, r.count, r.observed_s, r.frames, occupancy), key
    assert stored[("line1", "car", "in", t0)][1:4] == (4, 60.0, 60)
    assert stored[("line1", "car", "out", t0 + 60)][1:4] == (1, 29.0, 30)
    assert stored[("junction", "car", "line1->gate", t0)][:2] == ("movement", 4)
    assert stored[("junction", "car", "?->line1", t0 + 60)][:2] == ("movement", 1)
    assert stored[("Z", "car", "entered", t0)][4] == {"occupancy_mean": round(10 / 60, 3), "occupancy_peak": 1}


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_database_outage_is_spooled_then_replayed(
    broker: Mosquitto, db_url: str, tmp_path: Path, postgres_server: object
) -> None:
    col = collector(broker.url, db_url, tmp_path)
    fleet = devices(broker, tmp_path, 2)
    try:
        for d in fleet:
            d.emit(20)
        assert wait_stored([col], 40, 20)
        postgres_server.stop()  # type: ignore[attr-defined]
        try:
            for d in fleet:
                d.emit(30)
            assert wait_until(lambda: col.spool.depth >= 60, 20), col.metrics.render()
            assert not col.db_up and col.metrics.total("stored_total", "events") == 40
            # The broker (and so the devices) got their acks; a device deletes after its PUBACK arrives.
            assert wait_until(lambda: all(d.outbox_depth == 0 for d in fleet), 10)
        finally:
            postgres_server.start()  # type: ignore[attr-defined]
        assert wait_stored([col], 100, 30), col.metrics.render()
        assert wait_until(lambda: col.spool.depth == 0, 10)
    finally:
        for d in fleet:
            d.close()
        col.stop()
    assert_exactly(db_url, fleet)
    assert col.metrics.total("db_errors_total") >= 1


def test_a_broker_restart_and_a_collector_restart_lose_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'counts.db'}"
    col = collector(broker.url, db_url, tmp_path)
    fleet = devices(broker, tmp_path, 2)
    try:
        for d in fleet:
            d.emit(15)
        assert wait_stored([col], 30, 20)
        broker.stop(kill=False)  # a clean restart: mosquitto writes its persistence file
        for d in fleet:
            d.emit(15)  # counted while the broker is away: they wait in the outboxes
        broker.start()
        assert wait_stored([col], 60, 30), col.metrics.render()
        assert col.metrics.total("mqtt_reconnects_total") == 1
        col.stop()
        for d in fleet:
            d.emit(15)  # the broker queues these in the collector's persistent session
        assert wait_until(lambda: all(d.outbox_depth == 0 for d in fleet), 20)
        col = collector(broker.url, db_url, tmp_path)  # same client id: the session resumes
        assert wait_stored([col], 30, 30), col.metrics.render()
    finally:
        for d in fleet:
            d.close()
        col.stop()
    assert_exactly(db_url, fleet)


def test_two_collectors_share_one_subscription(broker: Mosquitto, pg_url: str, tmp_path: Path) -> None:
    cols = [collector(broker.url, pg_url, tmp_path, client_id=f"collector-{i}", share_group="fleet") for i in (1, 2)]
    fleet = devices(broker, tmp_path, 4)
    try:
        assert wait_until(lambda: all(c.connected for c in cols), 10)
        for _ in range(3):
            for d in fleet:
                d.emit(10)
        assert wait_stored(cols, 120, 30), [c.metrics.render() for c in cols]
        cols[1].stop()  # one collector restarts; the broker queues its share in its session meanwhile
        for d in fleet:
            d.emit(20)
        assert wait_until(lambda: all(d.outbox_depth == 0 for d in fleet), 20)
        cols.append(collector(broker.url, pg_url, tmp_path, client_id="collector-2", share_group="fleet"))
        assert wait_until(lambda: query(pg_url, "SELECT count(*) FROM events") == [(200,)], 30)
        assert wait_until(lambda: query(pg_url, "SELECT count(*) FROM devices WHERE checked_seq = 50") == [(4,)], 10)
    finally:
        for d in fleet:
            d.close()
        for c in cols:
            c.stop()
    shares = [c.metrics.total("stored_total", "events") for c in cols]
    assert sum(shares) == 200 and min(shares) > 0, shares  # all three took part, no event twice
    assert_exactly(pg_url, fleet)


def test_with_a_shared_subscription_a_broker_restart_may_lose_events_but_never_silently(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """mosquitto 2.0 does not restore an offline session's *shared* subscription after a restart:
    what devices publish before the collector is back is dropped by the broker (docs/collect.md).
    Whatever the broker does, every event must be a row or inside a reported gap."""
    db_url = f"sqlite:///{tmp_path / 'counts.db'}"
    col = collector(broker.url, db_url, tmp_path, share_group="fleet")
    fleet = devices(broker, tmp_path, 2)
    for d in fleet:
        d.emit(5)
    assert wait_stored([col], 10, 20)
    col.stop()
    broker.stop(kill=False)
    broker.start()
    try:
        for d in fleet:
            d.emit(5)  # the window: the collector's shared subscription is not back yet
        assert wait_until(lambda: all(d.outbox_depth == 0 and d.sink.connected for d in fleet), 20)
        col = collector(broker.url, db_url, tmp_path, share_group="fleet")
        assert wait_until(lambda: col.connected, 10)
        time.sleep(0.5)
        for d in fleet:
            d.emit(5)  # after it: a hole in the sequence is now visible
        assert wait_until(lambda: accounted(db_url) == {d.name: d.sent for d in fleet}, 20), accounted(db_url)
    finally:
        for d in fleet:
            d.close()
        col.stop()
    missing = query(db_url, "SELECT coalesce(sum(missing), 0) FROM seq_gap_status")[0][0]
    assert col.metrics.total("seq_gaps_total") == len(query(db_url, "SELECT * FROM seq_gaps"))
    print(f"events dropped by the broker and reported as gaps: {missing}")


def accounted(db_url: str) -> dict[str, int]:
    """device -> rows + events listed in reported gaps (== events sent when nothing is silent)."""
    rows = dict(query(db_url, "SELECT device_id, count(*) FROM events GROUP BY 1"))
    gaps = dict(query(db_url, "SELECT device_id, sum(missing) FROM seq_gap_status GROUP BY 1"))
    return {d: int(n) + int(gaps.get(d, 0)) for d, n in rows.items()}


def test_devices_behind_a_bridged_edge_broker(tmp_path: Path) -> None:
    """Two mosquittos: a site broker the devices use, bridged up to the central broker the collector uses."""
    central = Mosquitto(tmp_path / "central", persistence=True).start()
    site = Mosquitto(
        tmp_path / "site",
        persistence=True,
        extra=[
            "connection central",
            f"address 127.0.0.1:{central.port}",
            "topic edgetally/# out 1",
            "cleansession false",
            "bridge_protocol_version mqttv311",
            "remote_clientid site-bridge",
        ],
    ).start()
    db_url = f"sqlite:///{tmp_path / 'counts.db'}"
    col = collector(central.url, db_url, tmp_path)
    fleet = devices(site, tmp_path, 3)
    try:
        for d in fleet:
            d.emit(20)
        assert wait_stored([col], 60, 30), col.metrics.render()
        assert wait_until(
            lambda: query(db_url, "SELECT count(*) FROM devices WHERE availability = 'online'") == [(3,)], 10
        )
    finally:
        for d in fleet:
            d.close()
        col.stop()
        site.stop()
        central.stop()
    assert_exactly(db_url, fleet)


def test_events_a_device_had_to_drop_are_reported_as_a_gap(broker: Mosquitto, tmp_path: Path) -> None:
    """The board's outbox cap drops the oldest events during a long broker outage: the collector
    cannot store them, but it must say so (seq_gaps, a log line, a metric)."""
    db_url = f"sqlite:///{tmp_path / 'counts.db'}"
    col = collector(broker.url, db_url, tmp_path)
    board = Device("pole1", broker.url, tmp_path, outbox_max_events=10)
    try:
        board.emit(5)
        assert wait_stored([col], 5, 20)
        broker.stop(kill=False)
        # Only once the board knows the broker is gone do its new events wait in the outbox (a
        # loaded machine may otherwise still hand the first of them to the closing connection).
        assert wait_until(lambda: not board.sink.connected, 10)
        board.emit(30)  # seq 6..35; the outbox keeps 26..35
        broker.start()
        assert wait_until(lambda: col.metrics.total("seq_gaps_total") == 1, 30), col.metrics.render()
        assert wait_until(lambda: col.metrics.gauges.get("missing_events") == 20, 10)
    finally:
        board.close()
        col.stop()
    assert query(db_url, "SELECT device_id, first_seq, last_seq, missing FROM seq_gap_status") == [("pole1", 6, 25, 20)]
    assert event_summary(db_url) == {"pole1": (15, 15, 1, 35)}


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_full_spool_stops_acknowledging_and_the_broker_keeps_the_rest(
    broker: Mosquitto, db_url: str, tmp_path: Path, postgres_server: object
) -> None:
    col = collector(broker.url, db_url, tmp_path, spool_max_messages=8, batch_max=4)
    board = Device("pole1", broker.url, tmp_path)
    try:
        board.emit(2)
        assert wait_stored([col], 2, 20)
        postgres_server.stop()  # type: ignore[attr-defined]
        try:
            board.emit(30)
            assert wait_until(
                lambda: col.health() == "database unreachable and spool full: not acknowledging messages", 20
            )
            assert col.spool.depth == 8 and col.queue_depth() > 0  # held, unacknowledged: the broker re-sends if we die
        finally:
            postgres_server.start()  # type: ignore[attr-defined]
        assert wait_stored([col], 32, 30), col.metrics.render()
        assert wait_until(lambda: col.spool.depth == 0 and col.health() is None, 10)
    finally:
        board.close()
        col.stop()
    assert event_summary(db_url) == {"pole1": (32, 32, 1, 32)}

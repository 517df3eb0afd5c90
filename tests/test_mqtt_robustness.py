"""Robustness of the MQTT sink: fuzzed commands never crash it nor change counts; a SIGKILLed
runner loses no committed count; the embedded amqtt broker works for the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_support import MOSQUITTO, Mosquitto, Subscriber, feed, free_port, make_context, make_event, wait_until

from edgetally.sinks.commands import parse_command
from edgetally.sinks.mqtt import MqttSettings, MqttSink
from edgetally.sinks.outbox import Outbox

needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto binary not installed (apt-get install mosquitto)"
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=10), kids, max_size=3),
    max_leaves=8,
)
payloads = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["counter", "id", "all", "cmd"]), json_values, max_size=3).map(
        lambda d: json.dumps(d).encode()
    ),
)
names = st.sampled_from(["reset", "snapshot", "reload", "result", "Reset", "x"])


@settings(max_examples=400, deadline=None)
@given(name=names | st.text(max_size=12), payload=payloads)
def test_parse_command_total_function(name: str, payload: bytes) -> None:
    parsed = parse_command(name, payload, {"line1"})
    assert (parsed.command is None) != (parsed.error is None)
    if parsed.command is not None:
        assert parsed.command["cmd"] in ("reset", "snapshot", "reload")
        assert parsed.command.get("counter") in (None, "line1")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    tmp = tmp_path_factory.mktemp("fuzz")
    broker = Mosquitto(tmp / "broker").start()
    commands: list[dict[str, object]] = []
    ctx = make_context(commands=commands)
    sink = MqttSink(MqttSettings(url=broker.url, outbox=tmp / "o.sqlite", device_id="dev1"))
    sink.open(ctx)
    feed(sink, ctx, [make_event(i) for i in range(1, 11)])
    sub = Subscriber(broker.port, "edgetally/dev1/cmd/result").start()
    yield sink, ctx, commands, sub
    sub.stop()
    sink.close()
    broker.stop()


@needs_mosquitto
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, payload=payloads)
def test_fuzzed_commands_never_crash_nor_change_counts(live, name: str, payload: bytes) -> None:
    sink, ctx, commands, sub = live
    before_totals = json.dumps(ctx.totals.values, sort_keys=True)
    n_results, n_cmds = len(sub.on("edgetally/dev1/cmd/result")), len(commands)
    expected = parse_command(name, payload, {"line1", "gate"})
    if expected.command is None:
        time.sleep(0.21)  # refusals are answered at most 5/s (burst 20): wait for the next answer's turn
    sub.client.publish(f"edgetally/dev1/cmd/{name}", payload, qos=1)
    assert wait_until(lambda: len(sub.on("edgetally/dev1/cmd/result")) > n_results, 5)
    first_new = sub.on("edgetally/dev1/cmd/result")[n_results]
    if name == "result":  # what we received is our own message: the sink must not answer it
        time.sleep(0.05)
        assert len(sub.on("edgetally/dev1/cmd/result")) == n_results + 1 and first_new == payload
    else:
        assert json.loads(first_new)["ok"] == (expected.command is not None)
    assert json.dumps(ctx.totals.values, sort_keys=True) == before_totals
    new = commands[n_cmds:]
    assert all(
        c
        in (
            {"cmd": "reset", "counter": None},
            {"cmd": "reset", "counter": "line1"},
            {"cmd": "reset", "counter": "gate"},
            {"cmd": "reload"},
        )
        for c in new
    )
    assert sink.connected and sink._thread.is_alive()


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from mqtt_support import feed, make_context, make_event
    from edgetally.sinks.mqtt import MqttSettings, MqttSink
    ctx = make_context()
    sink = MqttSink(MqttSettings(url={url!r}, outbox={outbox!r}, device_id="dev1"))
    sink.open(ctx)
    print("restored", sum(n for per in ctx.totals.values.values() for d in per.values() for n in d.values()), flush=True)
    i = {start}
    while True:
        feed(sink, ctx, [make_event(i)])
        print("counted", i, flush=True)
        i += 1
        time.sleep(0.002)
""")


def _run_and_kill(url: str, outbox: Path, start: int, at_least: int) -> tuple[int, list[int]]:
    code = CHILD.format(tests=str(Path(__file__).parent), url=url, outbox=str(outbox), start=start)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    restored, counted = -1, []
    assert proc.stdout is not None
    for line in proc.stdout:
        word, n = line.split()
        if word == "restored":
            restored = int(n)
        else:
            counted.append(int(n))
        if len(counted) >= at_least:
            os.kill(proc.pid, signal.SIGKILL)  # no close(), no flush: a power-cut-like stop
            break
    proc.wait(10)
    return restored, counted


@needs_mosquitto
def test_sigkilled_runner_loses_no_committed_count(tmp_path: Path) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"  # no broker during the first run: everything stays in the outbox
    restored1, first = _run_and_kill(url, tmp_path / "o.sqlite", 1, 150)
    assert restored1 == 0
    broker = Mosquitto(tmp_path / "broker", port=port).start()
    sub = Subscriber(port, "edgetally/dev1/events").start()
    restored2, second = _run_and_kill(url, tmp_path / "o.sqlite", first[-1] + 1, 50)
    assert restored2 >= len(first)  # counters continue from where they were
    ctx = make_context()  # third start, in-process, drains whatever the second run left behind
    sink = MqttSink(MqttSettings(url=url, outbox=tmp_path / "o.sqlite", device_id="dev1"))
    sink.open(ctx)
    assert sum(n for per in ctx.totals.values.values() for d in per.values() for n in d.values()) >= len(first) + len(
        second
    )
    want = set(range(1, len(first) + len(second) + 1))
    assert wait_until(lambda: want <= {json.loads(p)["seq"] for p in sub.on("edgetally/dev1/events")}, 10)
    tracks = {json.loads(p)["track_id"] for p in sub.on("edgetally/dev1/events")}
    assert set(first) | set(second) <= tracks  # every count printed before a kill arrived
    sink.close()
    sub.stop()
    broker.stop()
    assert Outbox(tmp_path / "o.sqlite").next_seq > max(want)


def test_embedded_amqtt_broker_roundtrip() -> None:
    pytest.importorskip("amqtt", reason="amqtt not installed (pip install 'edgetally[broker]')")
    from edgetally.sinks.broker import run_embedded_broker

    handle = run_embedded_broker("127.0.0.1", free_port())
    try:
        sub = Subscriber(handle.port, "t/#").start()
        sub.client.publish("t/x", b"hello", qos=1)
        assert wait_until(lambda: sub.on("t/x") == [b"hello"], 5)
        sub.stop()
    finally:
        handle.stop()
    time.sleep(0.2)
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", handle.port), timeout=0.5).close()

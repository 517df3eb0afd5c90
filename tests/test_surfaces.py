"""The runner's network surfaces under abuse: the health server stays bounded (threads, time per
connection, no traceback per dropped client); MQTT commands that are malformed or deeply nested
are answered, refusals are throttled; the ACL in docs/mqtt.md, run by a real mosquitto, lets
only the operator command a device."""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mqtt_support import MOSQUITTO, Mosquitto, Subscriber, make_context, wait_until

from edgetally.service.health import HealthServer, MetricsHook
from edgetally.sinks.commands import parse_command
from edgetally.sinks.mqtt import MqttSettings, MqttSink

REPO = Path(__file__).resolve().parents[1]
needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto binary not installed (apt-get install mosquitto)"
)


def _status(url: str) -> int:
    """HTTP status, or 0 when the server closed the connection (full) or did not answer."""
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_health_server_holds_a_bounded_number_of_threads() -> None:
    server = HealthServer(MetricsHook(), "127.0.0.1:0").start()
    host, port = server.address
    before = threading.active_count()
    idle = []
    try:
        for _ in range(200):  # connect and say nothing: each used to hold a thread forever
            idle.append(socket.create_connection((host, port), timeout=5))
        time.sleep(1.0)
        assert threading.active_count() - before <= 32, (
            f"{threading.active_count() - before} threads for 200 idle clients"
        )
        assert wait_until(lambda: _status(f"http://{host}:{port}/healthz") == 503, 15), (
            "the idle clients' slots never came back (no per-connection timeout?)"
        )  # 503: no frame yet
    finally:
        for sock in idle:
            sock.close()
        server.close()


def test_dropped_clients_leave_no_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    server = HealthServer(MetricsHook(), "127.0.0.1:0").start()
    host, port = server.address
    try:
        for _ in range(50):  # half a request, then a TCP reset
            sock = socket.create_connection((host, port))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        assert _status(f"http://{host}:{port}/metrics") == 200
    finally:
        server.close()
    out, err = capfd.readouterr()
    assert "Traceback" not in err + out and "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "payload, error",
    [
        (b"[" * 3000 + b"]" * 3000, "payload too large"),
        (b"[" * 2000 + b"]" * 2000, "nested too deeply"),
        (b'{"counter": [' + b"[" * 1990 + b"]" * 1991 + b"}", "nested too deeply"),
        (b'{"counter": {"a": 1}}', "counter"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_malformed_and_nested_commands_are_refused_with_a_reason(payload: bytes, error: str) -> None:
    parsed = parse_command("reset", payload, {"L"})
    assert parsed.command is None and error in (parsed.error or "")


@needs_mosquitto
def test_refused_commands_are_answered_and_throttled(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edgetally.sinks.mqtt")
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgetally/dev1/cmd/result").start()
    commands: list[dict[str, object]] = []
    sink = MqttSink(MqttSettings(url=broker.url, outbox=tmp_path / "o.sqlite", device_id="dev1", homeassistant=False))
    sink.open(make_context(commands=commands))
    try:
        assert wait_until(lambda: sink.connected, 10)
        client = Subscriber(broker.port, "unused").start().client
        client.publish("edgetally/dev1/cmd/reset", b"[" * 2000 + b"]" * 2000, qos=1).wait_for_publish(5)
        assert wait_until(lambda: len(sub.on("edgetally/dev1/cmd/result")) == 1, 10)
        answer = json.loads(sub.on("edgetally/dev1/cmd/result")[0])
        assert answer["ok"] is False and "nested too deeply" in answer["error"]
        for i in range(200):  # a flood of bad commands
            client.publish("edgetally/dev1/cmd/reset", b'{"counter": "nope%d"}' % i, qos=0)
        time.sleep(2.0)
        client.publish("edgetally/dev1/cmd/reset", b'{"counter": "line1"}', qos=1).wait_for_publish(5)
        assert wait_until(lambda: commands == [{"cmd": "reset", "counter": "line1"}], 10), (
            "a good command after the flood"
        )
        answers = len(sub.on("edgetally/dev1/cmd/result"))
        assert 20 <= answers <= 45, f"{answers} answers to 201 commands in ~2 s"  # burst 20 + 5/s
        warnings = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
    finally:
        sink.close()
        sub.stop()
        broker.stop()


def _documented_acl() -> str:
    text = (REPO / "docs/mqtt.md").read_text()
    block = re.search(r"```\n(# /etc/mosquitto/edgetally\.acl.*?)```", text, re.DOTALL)
    assert block, "docs/mqtt.md lost its ACL block"
    return block.group(1)


@needs_mosquitto
def test_documented_acl_lets_only_the_operator_command(tmp_path: Path) -> None:
    users = {"pole1": "device-pw", "operator": "op-pw", "viewer": "view-pw"}
    broker = Mosquitto(tmp_path / "broker", users=users, acl=_documented_acl()).start()
    commands: list[dict[str, object]] = []
    secret = tmp_path / "pw"
    secret.write_text("device-pw\n")
    sink = MqttSink(
        MqttSettings(
            url=broker.url, username="pole1", password_file=secret, outbox=tmp_path / "o.sqlite", device_id="pole1"
        )
    )
    ctx = make_context(commands=commands)
    sink.open(ctx)
    try:
        assert wait_until(lambda: sink.connected, 10)
        viewer = _client(broker.port, "viewer", "view-pw")
        viewer.publish("edgetally/pole1/cmd/reset", b"{}", qos=1).wait_for_publish(5)
        time.sleep(1.0)
        assert commands == [], "a read-only viewer reset the counters"
        operator = _client(broker.port, "operator", "op-pw")
        operator.publish("edgetally/pole1/cmd/reset", b'{"counter": "line1"}', qos=1).wait_for_publish(5)
        assert wait_until(lambda: commands == [{"cmd": "reset", "counter": "line1"}], 10), "the operator was not obeyed"
        # A second viewer connection reads: the first one's denied publish may have cost it its
        # connection, and a subscribe sent while paho reconnects is dropped (a CI failure).
        seen: list[str] = []
        _client(broker.port, "viewer", "view-pw", subscribe="edgetally/#", seen=seen)
        assert wait_until(lambda: "edgetally/pole1/availability" in seen, 10), "the viewer cannot read the device"
    finally:
        sink.close()
        broker.stop()


def _client(port: int, user: str, password: str, subscribe: str | None = None, seen: list[str] | None = None):
    """A connected paho client; ``subscribe``: a filter (re)subscribed on every connect, each
    message's topic appended to ``seen``."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set(user, password)
    if subscribe is not None:
        got = seen if seen is not None else []
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(subscribe, qos=1)
        client.on_message = lambda c, u, m: got.append(m.topic)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client

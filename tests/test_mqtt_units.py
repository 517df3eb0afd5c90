"""MQTT sink pieces that need no broker: topics, payloads, URL and settings, commands, HA
discovery, and the durable outbox (seq, restore, cap, threads)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from edgetally.errors import ConfigError
from edgetally.sinks.commands import parse_command
from edgetally.sinks.homeassistant import discovery_payload
from edgetally.sinks.mqtt_settings import MqttSettings, MqttUrl, parse_mqtt_url
from edgetally.sinks.outbox import Outbox
from edgetally.sinks.topics import Topics, encode, event_payload, sanitize_segment
from edgetally.structures import CountEvent


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("line1", "line1"),
        ("line 1", "line_1"),
        ("a/b", "a_b"),
        ("+", "_"),
        ("#", "_"),
        ("", "_"),
        ("  ", "_"),
        ("café", "caf_"),
        ("x" * 100, "x" * 64),
        ("in.out-2", "in.out-2"),
    ],
)
def test_sanitize_segment(raw: str, expected: str) -> None:
    assert sanitize_segment(raw) == expected


def test_topic_layout() -> None:
    t = Topics.build("site/edge tally/", "my dev")
    assert t.base == "site/edge_tally/my_dev"
    assert t.availability == "site/edge_tally/my_dev/availability"
    assert t.counter("north line", "car", "in") == "site/edge_tally/my_dev/counter/north_line/car/in"
    assert t.events == "site/edge_tally/my_dev/events"
    assert t.cmd_wildcard == "site/edge_tally/my_dev/cmd/+"
    assert t.ha_discovery == "homeassistant/device/my_dev/config"
    assert t.command_name("site/edge_tally/my_dev/cmd/reset") == "reset"
    assert t.command_name("site/edge_tally/my_dev/cmd/reset/x") is None
    assert t.command_name("other/cmd/reset") is None


def test_event_payload_is_versioned_and_complete() -> None:
    ev = CountEvent("line1", "line", "car", "in", 7, 120, 4.8, 0.91234)
    p = json.loads(encode(event_payload(42, ev, ts=1000.0)))
    assert p == {
        "v": 1,
        "seq": 42,
        "ts": 1000.0,
        "counter": "line1",
        "kind": "line",
        "class": "car",
        "dir": "in",
        "track_id": 7,
        "score": 0.9123,
        "frame": 120,
        "src_ts": 4.8,
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", MqttUrl("broker", 1883, False)),
        ("mqtts://broker", MqttUrl("broker", 8883, True)),
        ("mqtt://bob@10.0.0.2:1884", MqttUrl("10.0.0.2", 1884, False, "bob")),
        ("mqtts://bob:s%40cret@h:8884/", MqttUrl("h", 8884, True, "bob", "s@cret")),
    ],
)
def test_parse_mqtt_url(url: str, expected: MqttUrl) -> None:
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize("url", ["http://h", "h:1883", "mqtt://", "mqtt://h:99999", "mqtt://h/topic", "mqtt://h?x=1"])
def test_parse_mqtt_url_rejects(url: str) -> None:
    with pytest.raises(ConfigError, match="MQTT URL"):
        parse_mqtt_url(url)


def test_settings_validation_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="scheme"):
        MqttSettings(url="tcp://x")
    with pytest.raises(ValueError, match="extra"):
        MqttSettings(bogus=1)
    (tmp_path / "pw").write_text("hunter2\n")
    s = MqttSettings(url="mqtt://alice@h", password_file=tmp_path / "pw")
    assert (s.resolve_username(), s.resolve_password()) == ("alice", "hunter2")
    (tmp_path / "mqtt-pass").write_text("fromcreds")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert MqttSettings(password_credential="mqtt-pass").resolve_password() == "fromcreds"
    with pytest.raises(ConfigError, match="cannot read"):
        MqttSettings(password_file=tmp_path / "missing").resolve_password()
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY"):
        MqttSettings(password_credential="mqtt-pass").resolve_password()
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert MqttSettings().resolve_outbox_path("d1") == tmp_path / "state" / "outbox-d1.sqlite"
    assert MqttSettings(url="mqtts://h").tls_enabled and not MqttSettings().tls_enabled


KNOWN = {"line1", "gate"}


@pytest.mark.parametrize(
    ("name", "payload", "command"),
    [
        ("reset", b"", {"cmd": "reset", "counter": None}),
        ("reset", b"{}", {"cmd": "reset", "counter": None}),
        ("reset", b'{"counter": "gate"}', {"cmd": "reset", "counter": "gate"}),
        ("reset", b'{"counter": null, "id": "r1"}', {"cmd": "reset", "counter": None}),
        ("snapshot", b"{}", {"cmd": "snapshot"}),
        ("reload", b"  ", {"cmd": "reload"}),
    ],
)
def test_commands_accepted(name: str, payload: bytes, command: dict[str, object]) -> None:
    parsed = parse_command(name, payload, KNOWN)
    assert parsed.error is None and parsed.command == command


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("reset", b'{"counter": "nope"}', "unknown counter"),
        ("reset", b'{"counter": 3}', "counter"),
        ("reset", b'{"counter": ""}', "counter"),
        ("reset", b'{"extra": 1}', "Extra inputs"),
        ("reset", b"[1, 2]", "JSON object"),
        ("reset", b"\xff\xfe", "UTF-8 JSON"),
        ("reset", b"{", "UTF-8 JSON"),
        ("reset", b"x" * 5000, "too large"),
        ("snapshot", b'{"all": true}', "Extra inputs"),
        ("explode", b"{}", "unknown command"),
    ],
)
def test_commands_refused(name: str, payload: bytes, error: str) -> None:
    parsed = parse_command(name, payload, KNOWN)
    assert parsed.command is None and error in (parsed.error or "")


def test_discovery_payload() -> None:
    t = Topics.build("edgetally", "dev1")
    p = discovery_payload(t, [("line1", "car", "in"), ("line1", "car", "out")])
    counters = {k: v for k, v in p["cmps"].items() if v.get("state_class") == "total_increasing"}
    assert set(counters) == {"dev1_line1_car_in", "dev1_line1_car_out"}
    assert counters["dev1_line1_car_in"]["state_topic"] == "edgetally/dev1/counter/line1/car/in"
    assert all(c["p"] == "sensor" for c in p["cmps"].values())
    diags = [c for c in p["cmps"].values() if c.get("entity_category") == "diagnostic"]
    assert {"FPS", "Outbox depth", "Dropped frames"} <= {c["name"] for c in diags}
    assert p["availability_topic"] == "edgetally/dev1/availability" and p["dev"]["ids"] == ["edgetally_dev1"]


def _append(box: Outbox, n: int, key: tuple[str, str, str] = ("l", "car", "in"), start: int = 0) -> list[int]:
    return [box.append(lambda s: f"e{s}".encode(), key, start + i + 1) for i in range(n)]


def test_outbox_seq_and_counters_survive_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    assert _append(box, 5) == [1, 2, 3, 4, 5]
    assert box.ack([1, 2]) == 2 and box.depth == 3
    box.close()
    box = Outbox(tmp_path / "o.sqlite")
    assert box.depth == 3 and box.next_seq == 6
    assert [e.seq for e in box.pending()] == [3, 4, 5] and box.pending()[0].payload == b"e3"
    assert box.counters() == {("l", "car", "in"): 5}
    assert _append(box, 1, start=5) == [6]
    assert [e.seq for e in box.pending(after_seq=4)] == [5, 6]
    box.close()


def test_outbox_seq_never_reused_after_full_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.ack(_append(box, 3))
    box.close()
    box = Outbox(tmp_path / "o.sqlite")
    assert box.depth == 0 and _append(box, 1) == [4]


def test_outbox_cap_drops_oldest_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_events=10)
    _append(box, 25)
    assert box.depth == 10 and box.dropped == 15
    assert [e.seq for e in box.pending()] == list(range(16, 26))
    assert box.counters() == {("l", "car", "in"): 25}  # the totals keep every count
    assert "dropped" in caplog.text
    box.close()
    assert Outbox(tmp_path / "o.sqlite", max_events=10).dropped == 15


def test_outbox_concurrent_append_and_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", synchronous="normal")
    acked: list[int] = []
    done = threading.Event()

    def consumer() -> None:
        last = 0
        while not done.is_set() or box.depth:
            batch = box.pending(last, 50)
            if batch:
                last = batch[-1].seq
                box.ack(e.seq for e in batch)
                acked.extend(e.seq for e in batch)

    t = threading.Thread(target=consumer)
    t.start()
    _append(box, 2000)
    done.set()
    t.join(10)
    assert acked == list(range(1, 2001)) and box.depth == 0

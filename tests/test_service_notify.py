"""sd_notify and the health hook against real AF_UNIX sockets, with a fake clock and a hand-made run
context (the frame loop itself is exercised in test_service_run.py)."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from service_helpers import metric_value

from edgetally.errors import ConfigError
from edgetally.hooks import ModelInfo, RunContext
from edgetally.service.health import MetricsHook, parse_addr, render_metrics
from edgetally.service.sdnotify import Notify, SystemdNotifier, notify_address, status_line, watchdog_interval
from edgetally.sinks.mqtt import MqttSink
from edgetally.sinks.mqtt_settings import MqttSettings
from edgetally.structures import CountTotals, Frame, FrameResult, Tracks


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", None),
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@abc", "\0abc"),
        ("vsock:2:1234", None),
    ],
)
def test_notify_address(value: str, expected: str | None) -> None:
    assert notify_address({"NOTIFY_SOCKET": value}) == expected


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "x"}, None),
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "42"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "43"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env, pid=42) == expected


class Receiver:
    def __init__(self, abstract: bool, tmp: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"edgetally-{uuid.uuid4().hex[:8]}"
            self.sock.bind("\0" + name)
            self.env = {"NOTIFY_SOCKET": "@" + name}
        else:
            self.sock.bind(str(tmp / "notify"))
            self.env = {"NOTIFY_SOCKET": str(tmp / "notify")}
        self.sock.settimeout(0.01)

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.extend(self.sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                return out


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_sends_one_datagram_to_path_and_abstract_sockets(tmp_path: Path, abstract: bool) -> None:
    rx = Receiver(abstract, tmp_path)
    n = Notify(env=rx.env)
    assert n.send("READY=1", "STATUS=hi")
    assert rx.drain() == ["READY=1", "STATUS=hi"]


def test_notify_without_socket_is_a_noop_and_a_vanished_socket_does_not_raise(tmp_path: Path) -> None:
    assert not Notify(env={}).send("READY=1")
    assert not Notify(env={"NOTIFY_SOCKET": str(tmp_path / "gone")}).send("READY=1")


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def dead_mqtt_sink() -> MqttSink:
    """An MQTT sink whose publisher thread has ended (as after a crash in it)."""
    sink = MqttSink(MqttSettings.model_validate({"url": "mqtt://127.0.0.1:1"}))
    sink._thread = threading.Thread(target=lambda: None)
    sink._thread.start()
    sink._thread.join()
    return sink


def context(problems: list[str] | None = None) -> RunContext:
    return RunContext(
        "cam1",
        [],
        [],
        CountTotals(),
        model=ModelInfo("art", "onnxruntime", "fp32", ()),
        health=lambda: list(problems or []),
    )


def result(frames: int, infer: float = 10.0) -> FrameResult:
    frame = Frame(np.zeros((4, 4, 3), np.uint8), frames - 1, (frames - 1) / 10)
    return FrameResult(frame, None, Tracks.empty(), (), frames, infer)


def test_ready_only_after_first_frame_then_watchdog_rate_limited(tmp_path: Path) -> None:
    rx, clock = Receiver(True, tmp_path), FakeClock()
    notifier = SystemdNotifier(env={**rx.env, "WATCHDOG_USEC": "2000000"}, clock=clock, status_interval_s=5.0)
    assert rx.drain() == []  # nothing before a frame went through
    notifier.open(context())
    sent = []
    for frame in range(1, 41):  # 40 frames at 10 fps = 4 s, watchdog interval 1 s
        notifier.frame(result(frame))
        sent.append(rx.drain())
        clock.t += 0.1
    assert sent[0][0] == "READY=1" and "WATCHDOG=1" in sent[0]
    assert sum(m.count("READY=1") for m in sent) == 1
    pings = [i for i, m in enumerate(sent) if "WATCHDOG=1" in m]
    assert pings == [0, 10, 20, 30]


def test_no_watchdog_ping_while_a_sink_worker_is_dead(tmp_path: Path) -> None:
    rx, clock = Receiver(True, tmp_path), FakeClock()
    notifier = SystemdNotifier(env={**rx.env, "WATCHDOG_USEC": "1000000"}, clock=clock)
    notifier.open(context(dead_mqtt_sink().problems()))
    for frame in range(1, 11):
        notifier.frame(result(frame))
        clock.t += 1.0
    lines = rx.drain()
    assert "READY=1" in lines and "WATCHDOG=1" not in lines
    assert any(line.startswith("STATUS=unhealthy: MqttSink worker stopped") for line in lines)


def test_reload_sends_reloading_with_monotonic_then_ready_after_the_reload_ran(tmp_path: Path) -> None:
    rx, clock = Receiver(True, tmp_path), FakeClock()
    notifier = SystemdNotifier(env=rx.env, clock=clock)
    notifier.open(context())
    notifier.frame(result(1))
    rx.drain()
    notifier.reloading()
    lines = rx.drain()
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=") and int(lines[1].split("=")[1]) > 0
    notifier.frame(result(2))
    assert "READY=1" not in rx.drain()  # the frame loop has not applied it yet
    load = notifier.wrap_reload(lambda: (_ for _ in ()).throw(ValueError("bad yaml")))
    with pytest.raises(ValueError):
        load()  # a rejected config still ends the reload: the service keeps counting
    notifier.frame(result(3))
    assert "READY=1" in rx.drain()
    notifier.close("stopped")
    assert rx.drain()[0] == "STOPPING=1"


def test_status_line_sums_classes_per_direction() -> None:
    totals = {"L": {"car": {"in": 2, "out": 5}, "bus": {"in": 1}}, "Z": {}}
    line = status_line(result(480, infer=8.14), totals, 12.34)
    assert line == "12.3 fps, infer 8.1 ms, 480 frames; L: in 3 out 5; Z: 0"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        (":9108", ("0.0.0.0", 9108)),
        ("[::1]:0", ("::1", 0)),
    ],
)
def test_parse_addr(value: str, expected: tuple[str, int]) -> None:
    assert parse_addr(value) == expected


@pytest.mark.parametrize("value", ["9108", "host:", "host:99999", "host:x"])
def test_parse_addr_rejects(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_addr(value)


def test_mqtt_sink_reports_a_dead_publisher() -> None:
    assert MqttSink(MqttSettings.model_validate({"url": "mqtt://127.0.0.1:1"})).problems() == []  # not started
    assert dead_mqtt_sink().problems() == ["MqttSink worker stopped"]


def test_health_and_metrics_follow_the_frames() -> None:
    clock = FakeClock()
    obs = MetricsHook(stall_s=5.0, clock=clock)
    assert obs.health() == "starting: no frame yet"
    ctx = context()
    ctx.totals.values = {"L": {"car": {"in": 2}}}
    obs.open(ctx)
    for frame in range(1, 21):
        obs.frame(result(frame, infer=20.0))
        clock.t += 0.1
    assert obs.health() is None
    text = render_metrics(obs)
    assert 'edgetally_count_total{counter="L",class="car",direction="in"} 2' in text
    frames = metric_value(text, "edgetally_frames_total")  # as of the last 0.5 s refresh
    assert frames is not None and 15 <= frames <= 20
    assert metric_value(text, "edgetally_inference_seconds_count") == frames
    assert 'edgetally_inference_seconds{quantile="0.5"} 0.02' in text
    assert metric_value(text, "edgetally_fps") == pytest.approx(10.0, rel=0.05)
    assert 'edgetally_info{runtime="onnxruntime",precision="fp32",device_id="cam1"} 1' in text
    clock.t += 6.0
    assert obs.health().startswith("frames stalled: no frame for 6.")
    assert "edgetally_up 0" in render_metrics(obs)
    obs.close("error")
    assert obs.health() == "stopped (error)"

"""Test helpers for the MQTT sink: a real mosquitto on a free loopback port, a paho subscriber
that records everything, and small factories. Imported by tests/test_mqtt_*.py (and the bench)."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgetally.hooks import CounterInfo, RunContext
from edgetally.structures import CountEvent, CountTotals

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def bridge_to(observer_port: int, topic: str, name: str) -> list[str]:
    """Mosquitto config lines (``Mosquitto(extra=...)``) that forward ``topic`` at QoS 1 to a second
    broker on ``observer_port``. A test that restarts a broker watches its messages there: a
    subscriber on the restarted broker itself may subscribe after the runner has drained its
    outbox (a clean broker keeps no subscriptions)."""
    return [
        f"connection {name}",
        f"address 127.0.0.1:{observer_port}",
        f"topic {topic} out 1",
        "cleansession false",
        "bridge_protocol_version mqttv311",
        f"remote_clientid {name}",
    ]


class Mosquitto:
    """``mosquitto -c conf`` on 127.0.0.1:port; ``users`` turns anonymous access off; ``acl`` is
    the text of an acl_file; ``extra``: more config lines (a bridge)."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        users: dict[str, str] | None = None,
        persistence: bool = False,
        acl: str | None = None,
        extra: list[str] | None = None,
    ) -> None:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto binary not found")
        self.workdir, self.port = workdir, port or free_port()
        self.users, self.persistence, self.acl, self.extra = users, persistence, acl, extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def _config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "max_inflight_messages 0",
            "max_queued_messages 0",
            # run as root, mosquitto drops to user "mosquitto", who cannot read pytest's tmp dirs
            f"user {getpass.getuser()}",
        ]
        if self.users:
            pw = self.workdir / "passwd"
            pw.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            (self.workdir / "acl").write_text(self.acl)
            lines.append(f"acl_file {self.workdir / 'acl'}")
        lines += self.extra
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> Mosquitto:
        conf = self._config()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_until(self._listening, 10):
            self.stop()
            raise RuntimeError(f"mosquitto did not start on port {self.port}")
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, kill: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@dataclass
class Subscriber:
    """A paho client recording (topic, payload, retain) for every message under ``topic``."""

    port: int
    topic: str = "#"
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: object = None
    subscribed: threading.Event = field(default_factory=threading.Event)
    client_id: str | None = None  # set: a persistent session (the broker queues QoS 1 messages while it is away)
    redelivered: list[tuple[str, bytes]] = field(default_factory=list)  # the broker's resends (DUP flag)

    def start(self) -> Subscriber:
        import paho.mqtt.client as mqtt

        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id or "", clean_session=self.client_id is None
        )
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(self.topic, qos=1)
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        c.reconnect_delay_set(1, 1)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        self.client = c
        assert self.subscribed.wait(5), "subscriber did not subscribe"
        return self

    def _on_message(self, client: object, userdata: object, msg: object) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            if msg.dup:
                self.redelivered.append((msg.topic, bytes(msg.payload)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def last(self, topic: str) -> bytes | None:
        got = self.on(topic)
        return got[-1] if got else None

    def stop(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()


def retained(port: int, topic_filter: str, settle: float = 0.5) -> dict[str, bytes]:
    """Fresh connection: what the broker holds retained under ``topic_filter``."""
    sub = Subscriber(port, topic_filter).start()
    time.sleep(settle)
    sub.stop()
    with sub.lock:
        return {t: p for t, p, r in sub.messages if r}


def make_context(device: str = "dev1", commands: list[dict[str, object]] | None = None) -> RunContext:
    sink = commands if commands is not None else []
    return RunContext(
        device_id=device,
        counters=[CounterInfo("line1", "line", ("in", "out")), CounterInfo("gate", "line", ("in", "out"))],
        classes=["car", "person"],
        totals=CountTotals(),
        commands=sink.append,
    )


def make_event(i: int, counter: str = "line1") -> CountEvent:
    return CountEvent(
        counter=counter,
        kind="line",
        class_name="car" if i % 3 else "person",
        direction="in" if i % 2 else "out",
        track_id=i,
        frame_index=10 * i,
        timestamp=i / 25.0,
        score=0.9,
    )


def feed(sink: object, ctx: RunContext, events: list[CountEvent]) -> None:
    """What the pipeline does per event: update totals, then tell the sink."""
    for ev in events:
        sink.event(ev, ctx.totals.add(ev))

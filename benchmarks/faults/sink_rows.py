"""The MQTT outbox under a full disk and a garbage file (item 5), and hostile commands (item 9),
against a real mosquitto and a real tmpfs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.faults.common import Row


def _broker(work: Path):
    from mqtt_support import MOSQUITTO, Mosquitto

    return None if MOSQUITTO is None else Mosquitto(work).start()


def _published(sub, topic: str, n: int, timeout: float = 30.0) -> set[int]:
    from mqtt_support import wait_until

    wait_until(lambda: len({json.loads(p)["seq"] for p in sub.on(topic)}) >= n, timeout)
    return {json.loads(p)["seq"] for p in sub.on(topic)}


def full_disk_row(work: Path) -> Row:
    from disk_support import FullDisk
    from mqtt_support import Subscriber, feed, make_context, make_event, wait_until

    from edgetally.sinks.mqtt import MqttSettings, MqttSink

    fault = "disk full mid-run (tmpfs filled to the brim), MQTT outbox on it"
    disk, broker = FullDisk(work / "mnt"), _broker(work / "broker-disk")
    if FullDisk.why_not() or broker is None:
        return Row(fault, f"skipped: {FullDisk.why_not() or 'no mosquitto'}", "n/a", "n/a")
    try:
        disk.mount()
    except PermissionError as exc:
        broker.stop()
        return Row(fault, f"skipped: {exc}", "n/a", "n/a")
    sub = Subscriber(broker.port, "edgetally/dev1/#").start()
    ctx = make_context()
    sink = MqttSink(
        MqttSettings(
            url=broker.url, outbox=disk.path / "o.sqlite", device_id="dev1", homeassistant=False, outbox_retry_s=0.5
        )
    )
    try:
        sink.open(ctx)
        feed(sink, ctx, [make_event(i) for i in range(1, 21)])
        disk.fill()
        feed(sink, ctx, [make_event(i) for i in range(21, 301)])
        degraded = wait_until(lambda: sub.last("edgetally/dev1/state") == b"degraded", 10)
        seqs = _published(sub, "edgetally/dev1/events", 300)
        disk.free()
        back = wait_until(lambda: sink.outbox_problem is None, 10)
    finally:
        sink.close()
        sub.stop()
        broker.stop()
        disk.unmount()
    missing = 300 - len(seqs & set(range(1, 301)))
    outcome = (
        f"counting and publishing went on from memory (state {'degraded' if degraded else '?'}); "
        f"{'back on disk once space returned' if back else 'never back on disk'}"
    )
    return Row(fault, outcome, f"{missing} of 300 lost" if missing else "0 lost", "yes")


def garbage_outbox_row(work: Path) -> Row:
    from mqtt_support import Subscriber, feed, make_context, make_event

    from edgetally.sinks.mqtt import MqttSettings, MqttSink

    fault = "garbage outbox file at start"
    broker = _broker(work / "broker-garbage")
    if broker is None:
        return Row(fault, "skipped: no mosquitto", "n/a", "n/a")
    path = work / "garbage.sqlite"
    path.write_bytes(b"not a database\n" * 500)
    sub = Subscriber(broker.port, "edgetally/dev1/events").start()
    ctx = make_context()
    sink = MqttSink(MqttSettings(url=broker.url, outbox=path, device_id="dev1", homeassistant=False))
    try:
        sink.open(ctx)
        feed(sink, ctx, [make_event(i) for i in range(1, 51)])
        seqs = _published(sub, "edgetally/dev1/events", 50)
    finally:
        sink.close()
        sub.stop()
        broker.stop()
    kept = [p.name for p in work.glob("garbage.sqlite.corrupt-*")]
    missing = 50 - len(seqs)
    return Row(
        fault,
        f"moved aside ({kept[0] if kept else 'not kept!'}), new outbox started",
        f"{missing} of 50 lost" if missing else "0 lost",
        "yes",
    )


def hostile_commands_row(work: Path) -> Row:
    from mqtt_support import Subscriber, feed, make_context, make_event, wait_until

    from edgetally.sinks.mqtt import MqttSettings, MqttSink

    fault = "200 malformed and deeply nested cmd/reset payloads"
    broker = _broker(work / "broker-cmd")
    if broker is None:
        return Row(fault, "skipped: no mosquitto", "n/a", "n/a")
    commands: list[dict] = []
    ctx = make_context(commands=commands)
    sub = Subscriber(broker.port, "edgetally/dev1/cmd/result").start()
    sink = MqttSink(MqttSettings(url=broker.url, outbox=work / "cmd.sqlite", device_id="dev1", homeassistant=False))
    try:
        sink.open(ctx)
        wait_until(lambda: sink.connected, 10)
        feed(sink, ctx, [make_event(i) for i in range(1, 11)])
        client = Subscriber(broker.port, "unused").start().client
        for i in range(200):
            payload = b"[" * 2000 + b"]" * 2000 if i % 2 else b'{"counter": {"x": %d}}' % i
            client.publish("edgetally/dev1/cmd/reset", payload, qos=1)
        time.sleep(2.0)
        answered = len(sub.on("edgetally/dev1/cmd/result"))
        alive = not sink.problems()
    finally:
        sink.close()
        sub.stop()
        broker.stop()
    counted = sum(n for per in ctx.totals.values.values() for dirs in per.values() for n in dirs.values())
    outcome = f"all refused ({len(commands)} obeyed), {answered} answered (throttled to 5/s), publisher alive: {alive}"
    return Row(fault, outcome, "0 lost" if counted == 10 else f"{10 - counted} of 10 lost", "yes" if alive else "no")

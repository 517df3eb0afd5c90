"""The outbox under disk faults, against real components: a tmpfs filled to the brim, a garbage
file, a damaged SQLite file, real mosquitto, and fsyncs counted with strace (group commits)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from disk_support import FullDisk
from mqtt_support import (
    MOSQUITTO,
    Mosquitto,
    Subscriber,
    make_context,
    make_event,
    wait_until,
)

from edgetally.hooks import RunStats
from edgetally.sinks.mqtt import MqttSettings, MqttSink
from edgetally.sinks.outbox import Outbox
from edgetally.sinks.outbox_files import seq_floor

needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto binary not installed (apt-get install mosquitto)"
)


@pytest.fixture
def disk(tmp_path: Path):
    why = FullDisk.why_not()
    if why:
        pytest.skip(why)
    d = FullDisk(tmp_path / "mnt")
    try:
        d.mount()
    except PermissionError as exc:
        pytest.skip(str(exc))
    yield d
    d.unmount()


def _feed(sink: MqttSink, ctx, first: int, n: int) -> None:
    for i in range(first, first + n):
        ev = make_event(i)
        sink.event(ev, ctx.totals.add(ev))


@needs_mosquitto
def test_full_disk_keeps_counting_and_publishing_then_recovers(disk: FullDisk, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgetally/dev1/#").start()
    ctx = make_context()
    settings = MqttSettings(
        url=broker.url,
        outbox=disk.path / "outbox.sqlite",
        device_id="dev1",
        homeassistant=False,
        outbox_retry_s=0.2,
        stats_interval_s=0.1,
    )
    sink = MqttSink(settings)
    try:
        sink.open(ctx)
        _feed(sink, ctx, 1, 20)
        assert sink.outbox_problem is None
        disk.fill()
        _feed(sink, ctx, 21, 300)  # the old code raised "cannot rollback - no transaction is active" here
        assert sink.outbox_problem is not None and "full" in sink.outbox_problem
        sink.stats(RunStats(frames=1, fps=1.0, infer_ms_p50=1.0, dropped_frames=0, camera_age_s=0.0, reconnects=0))
        assert sink.metrics()["outbox_on_disk"] == 0.0
        assert wait_until(lambda: sub.last("edgetally/dev1/state") == b"degraded", 10)
        stats = (
            json.loads(sub.last("edgetally/dev1/stats") or b"{}")
            if wait_until(lambda: sub.last("edgetally/dev1/stats") is not None, 5)
            else {}
        )
        assert stats.get("outbox_on_disk") == 0 and stats.get("outbox_memory_events", 0) >= 0

        def seqs():
            return {json.loads(p)["seq"] for p in sub.on("edgetally/dev1/events")}

        assert wait_until(lambda: seqs() == set(range(1, 321)), 20), "every event is published while the disk is full"
        disk.free()
        assert wait_until(lambda: sink.outbox_problem is None, 10), "the outbox goes back to disk"
        assert wait_until(lambda: sub.last("edgetally/dev1/state") == b"ready", 10)
        _feed(sink, ctx, 321, 5)
        assert wait_until(lambda: seqs() == set(range(1, 326)), 10)
    finally:
        sink.close()
        sub.stop()
        broker.stop()
    reopened = Outbox(disk.path / "outbox.sqlite")
    totals = {(c, k, d): n for c, per in ctx.totals.values.items() for k, dirs in per.items() for d, n in dirs.items()}
    assert reopened.counters() == totals and reopened.next_seq == 326
    reopened.close()


def test_outbox_created_on_a_full_disk_runs_in_memory_until_space_returns(disk: FullDisk) -> None:
    disk.fill()
    box = Outbox(disk.path / "o.sqlite", retry_s=0.05)
    assert not box.on_disk
    seqs = [box.append(lambda s: b"x%d" % s, ("L", "car", "in"), n) for n in range(1, 6)]
    assert [e.seq for e in box.pending()] == seqs and box.memory_depth == 5
    disk.free()
    time.sleep(0.06)
    box.append(lambda s: b"y", ("L", "car", "in"), 6)
    assert box.on_disk and box.memory_depth == 0 and box.depth == 6
    box.ack(seqs[:2])
    box.close()
    again = Outbox(disk.path / "o.sqlite")
    assert again.depth == 4 and again.counters() == {("L", "car", "in"): 6} and again.next_seq == seqs[-1] + 2
    again.close()


@needs_mosquitto
def test_garbage_outbox_is_moved_aside_and_a_new_one_starts(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    garbage = b"this is not an sqlite database\n" * 200
    path.write_bytes(garbage)
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgetally/dev1/events").start()
    ctx = make_context()
    sink = MqttSink(MqttSettings(url=broker.url, outbox=path, device_id="dev1", homeassistant=False))
    try:
        sink.open(ctx)  # the old code failed here, at every start
        _feed(sink, ctx, 1, 3)
        assert wait_until(lambda: len(sub.on("edgetally/dev1/events")) == 3, 10)
    finally:
        sink.close()
        sub.stop()
        broker.stop()
    kept = list(tmp_path.glob("outbox.sqlite.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == garbage
    seqs = [json.loads(p)["seq"] for p in sub.on("edgetally/dev1/events")]
    assert seqs[0] >= seq_floor() - 60_000 and seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]


def test_damaged_outbox_keeps_what_can_be_read(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    for first in range(1, 2001, 100):  # many event pages, few counter/meta pages
        box.append_many(
            [
                (lambda s: b"e" * 200, ("L", "car", "in" if i % 2 else "out"), (i + 1) // 2)
                for i in range(first, first + 100)
            ]
        )
    box.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[40 * page : 42 * page] = b"\xa5" * (2 * page)  # two pages in the middle of the events table
    path.write_bytes(bytes(data))
    again = Outbox(path)
    assert again.recovered_from is not None and again.recovered_from.exists()
    assert again.counters() == {("L", "car", "in"): 1000, ("L", "car", "out"): 1000}
    assert again.next_seq == 2001
    again.close()


def _fsyncs(script: str, tmp: Path) -> int:
    """fsync + fdatasync calls made by ``script`` (strace -c)."""
    report = tmp / "strace.txt"
    subprocess.run(
        ["strace", "-f", "-c", "-o", str(report), "-e", "trace=fsync,fdatasync", sys.executable, "-c", script],
        check=True,
        timeout=120,
    )
    lines = [line.split() for line in report.read_text().splitlines()]
    return sum(int(cols[3]) for cols in lines if cols and cols[-1] in ("fsync", "fdatasync"))


@pytest.mark.skipif(shutil.which("strace") is None, reason="counting fsyncs needs strace (apt-get install strace)")
def test_group_commit_one_fsync_per_frame_of_events(tmp_path: Path) -> None:
    """200 events as 20 frames of 10: exactly one fsync per frame beyond what creating and closing
    the file costs; acknowledgements add none of their own. One by one: one fsync per event."""

    def script(frames: int, per_call: bool) -> str:
        append = "seqs = [box.append(*item) for item in items]" if per_call else "seqs = box.append_many(items)"
        return textwrap.dedent(f"""
            from edgetally.sinks.outbox import Outbox
            box = Outbox({str(tmp_path / "o.sqlite")!r})
            for f in range({frames}):
                items = [(lambda s: b"e", ("L", "car", "in"), 10 * f + i) for i in range(10)]
                {append}
                box.ack(seqs[:5])
            box.close()
        """)

    def fsyncs(text: str) -> int:
        for p in tmp_path.glob("o.sqlite*"):
            p.unlink()
        return _fsyncs(text, tmp_path)

    base = fsyncs(script(0, False))
    assert fsyncs(script(20, False)) - base == 20
    assert fsyncs(script(20, True)) - base == 200

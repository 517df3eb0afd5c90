"""End to end: `edge run --mqtt` over a real video against a real mosquitto.

Skipped until `edge run` has the `--mqtt URL` and `--outbox PATH` options (the runner wires
MqttSink into its sinks), and when ../shared/data or mosquitto is missing."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mqtt_support import MOSQUITTO, Mosquitto, Subscriber, bridge_to, retained, wait_until

from edgetally.sinks.jsonl import read_events

RUN = "import sys; from edgetally.cli import main; sys.exit(main(sys.argv[1:]))"


@functools.lru_cache(maxsize=1)
def _run_help() -> str:
    out = subprocess.run(
        [sys.executable, "-c", RUN, "run", "--help"], check=False, capture_output=True, text=True, timeout=60
    )
    return out.stdout


@pytest.fixture(scope="module")
def runner_ready() -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    help_text = _run_help()
    if "--mqtt" not in help_text or "--outbox" not in help_text:
        pytest.skip("`edge run` has no --mqtt/--outbox options yet")


@pytest.fixture(scope="module")
def artifact(runner_ready: None, yolox_fp32_artifact: Path) -> Path:
    return yolox_fp32_artifact


def _cmd(artifact: Path, video: Path, url: str, tmp: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        RUN,
        "run",
        "--model",
        str(artifact),
        "--source",
        str(video),
        "--line",
        "L=320,0,320,360",
        "--classes",
        "car,truck,bus,motorcycle",
        "--events-out",
        str(tmp / "events.jsonl"),
        "--summary-json",
        str(tmp / "summary.json"),
        "--mqtt",
        url,
        "--outbox",
        str(tmp / "outbox.sqlite"),
        "--device-id",
        "e2e",
    ]


def _key(e: dict) -> tuple:
    return (e["counter"], e["class"], e.get("dir", e.get("direction")), e["track_id"], e["frame"])


def test_run_publishes_exactly_the_events_out_file(artifact: Path, shared_data: Path, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgetally/e2e/events").start()
    subprocess.run(
        _cmd(artifact, shared_data / "videos/traffic_road.mp4", broker.url, tmp_path), check=True, timeout=600
    )
    written = read_events(tmp_path / "events.jsonl")
    assert written, "the video should produce crossings"
    assert wait_until(lambda: len(sub.on("edgetally/e2e/events")) >= len(written), 10)
    got = [json.loads(p) for p in sub.on("edgetally/e2e/events")]
    assert [g["seq"] for g in got] == list(range(1, len(written) + 1))
    assert [_key(g) for g in got] == [_key(w) for w in written]
    counts = json.loads((tmp_path / "summary.json").read_text())["counts"]
    want = {
        f"edgetally/e2e/counter/L/{cls}/{d}": str(n).encode()
        for cls, dirs in counts["L"].items()
        for d, n in dirs.items()
        if n
    }
    assert retained(broker.port, "edgetally/e2e/counter/#") == want
    sub.stop()
    broker.stop()


def test_sigkill_mid_run_loses_no_counted_event(artifact: Path, shared_data: Path, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgetally/e2e/events").start()
    proc = subprocess.Popen(_cmd(artifact, shared_data / "videos/traffic_road.mp4", broker.url, tmp_path))
    events = tmp_path / "events.jsonl"
    assert wait_until(lambda: events.exists() and len(read_events(events)) >= 3, 300, 0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    before = read_events(events)
    time.sleep(0.5)
    (tmp_path / "run2").mkdir()
    cmd = _cmd(artifact, shared_data / "videos/traffic_road.mp4", broker.url, tmp_path / "run2")
    cmd[cmd.index("--outbox") + 1] = str(tmp_path / "outbox.sqlite")  # same outbox: counters continue
    subprocess.run(cmd, check=True, timeout=600)
    got = [json.loads(p) for p in sub.on("edgetally/e2e/events")]
    assert {_key(e) for e in before} <= {_key(g) for g in got[: len(before) + 50]}
    seqs = [g["seq"] for g in got]
    assert set(seqs) == set(range(1, max(seqs) + 1))  # no gap: nothing counted was lost
    sub.stop()
    broker.stop()


def test_broker_down_for_20s_mid_run_loses_nothing(artifact: Path, shared_data: Path, tmp_path: Path) -> None:
    """The broker is killed once the run has counted something, stays down 20 s, and comes back
    empty (no persistence). The runner keeps counting into its outbox; after the run every event
    has arrived exactly once by seq, and the retained counters equal the summary.

    The events are watched on a second broker the runner's broker bridges to: a subscriber on the
    restarted broker itself raced the runner, which may reconnect and drain its outbox before the
    subscriber has subscribed again (a clean broker keeps no subscriptions)."""
    observer = Mosquitto(tmp_path / "observer").start()
    sub = Subscriber(observer.port, "edgetally/e2e/events").start()
    broker = Mosquitto(
        tmp_path / "broker", extra=bridge_to(observer.port, "edgetally/e2e/events", "e2e-bridge")
    ).start()
    config = tmp_path / "run.yaml"
    # close_timeout_s: a run that ends while the broker is still away waits for it to drain.
    config.write_text(
        f"model: {artifact}\nsource: {shared_data / 'videos/traffic_road.mp4'}\n"
        "lines:\n  - name: L\n    points: [[320, 0], [320, 360]]\nclasses: [car, truck, bus, motorcycle]\n"
        f"device_id: e2e\noutputs:\n  events: {tmp_path / 'events.jsonl'}\n  summary: {tmp_path / 'summary.json'}\n"
        f"mqtt:\n  url: {broker.url}\n  outbox: {tmp_path / 'outbox.sqlite'}\n  close_timeout_s: 90\n"
        "  reconnect_max_s: 2\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", RUN, "run", "--config", str(config)])
    events = tmp_path / "events.jsonl"
    assert wait_until(lambda: events.exists() and len(read_events(events)) >= 1, 300, 0.05)
    broker.stop()
    counted_while_down = len(read_events(events))
    time.sleep(20)
    broker.start()
    assert proc.wait(timeout=300) == 0
    written = read_events(events)
    assert len(written) > counted_while_down, "the run should keep counting while the broker is away"
    assert wait_until(lambda: len({json.loads(p)["seq"] for p in sub.on("edgetally/e2e/events")}) >= len(written), 30)
    by_seq = {json.loads(p)["seq"]: json.loads(p) for p in sub.on("edgetally/e2e/events")}
    assert sorted(by_seq) == list(range(1, len(written) + 1))
    assert [_key(by_seq[s]) for s in sorted(by_seq)] == [_key(w) for w in written]
    counts = json.loads((tmp_path / "summary.json").read_text())["counts"]
    want = {
        f"edgetally/e2e/counter/L/{cls}/{d}": str(n).encode()
        for cls, dirs in counts["L"].items()
        for d, n in dirs.items()
        if n
    }
    assert retained(broker.port, "edgetally/e2e/counter/#") == want
    sub.stop()
    broker.stop()
    observer.stop()


@pytest.mark.parametrize(("interval_s", "max_frames", "at_least"), [(0.5, None, 4), (30.0, 20, 1)])
def test_stats_follow_the_configured_interval_and_end_with_the_run(
    artifact: Path, shared_data: Path, tmp_path: Path, interval_s: float, max_frames: int | None, at_least: int
) -> None:
    """mqtt.stats_interval_s sets the stats cadence; a run shorter than one interval still
    publishes its final stats (frames and fps) before it stops."""
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgetally/stats-dev/stats").start()
    config = tmp_path / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "model": str(artifact),
                "source": str(shared_data / "videos/traffic_road.mp4"),
                "device_id": "stats-dev",
                "lines": [{"name": "L", "points": [[320, 0], [320, 360]]}],
                "max_frames": max_frames,
                "mqtt": {"url": broker.url, "outbox": str(tmp_path / "outbox.sqlite"), "stats_interval_s": interval_s},
            }
        )
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", RUN, "run", "--config", str(config)], check=True, timeout=600)
    elapsed = time.monotonic() - started
    assert wait_until(lambda: len(sub.on("edgetally/stats-dev/stats")) >= 1, 10)
    stats = [json.loads(p) for p in sub.on("edgetally/stats-dev/stats")]
    assert len(stats) >= at_least, (len(stats), elapsed)
    assert len(stats) <= elapsed / interval_s + 2  # no faster than the interval (+ the final one)
    assert stats[-1]["frames"] == (max_frames or 480) and stats[-1]["fps"] > 0
    sub.stop()
    broker.stop()

"""Interval counts equal the events they summarise, through the real pipeline: the demo scene with the
demo detector (a restart in the middle of a bin), and the shared real video with YOLOX-nano over a real
mosquitto that dies mid-run (the runner as a subprocess, wall-clock bins)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgetally.history.rows import stored_rows
from edgetally.history.store import HistoryStore
from edgetally.sinks.jsonl import read_events
from tests.mqtt_support import MOSQUITTO, Mosquitto, Subscriber, bridge_to, wait_until

REPO = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000


def _event_sums(path: Path) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for line in path.read_text().splitlines():
        e = json.loads(line)
        if "counter" in e:
            key = (e["counter"], e["class"], e["direction"])
            out[key] = out.get(key, 0) + 1
    return out


def _history_sums(path: Path, closed_only: bool = False) -> dict[tuple[str, str, str], int]:
    store = HistoryStore(path, "x")
    closed = {(b.start, b.bin_s) for b in store.bins() if b.closed}
    out: dict[tuple[str, str, str], int] = {}
    for r in stored_rows(store):
        if r.count and (not closed_only or (r.start, r.bin_s) in closed):
            out[(r.counter, r.class_name, r.direction)] = out.get((r.counter, r.class_name, r.direction), 0) + r.count
    store.close()
    return out


def _add(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}


def _run_demo(artifact: Path, video: Path, tmp: Path, name: str, offset: float) -> dict:
    """One run, its clock = T0 + offset + 6 x the source timeline (12 s of video = 72 s of bins)."""
    from edgetally import Detector, JsonlEventSink, Pipeline, RunSettings, Tracker, open_source
    from edgetally.build import build_counters
    from edgetally.sinks.intervals import IntervalSink

    class SourceClock(Tracker):
        """The tracker sees each frame's timestamp first, in the frame loop: the bins' clock follows it."""

        now = 0.0

        def update(self, detections, timestamp):  # type: ignore[no-untyped-def]
            self.now = timestamp
            return super().update(detections, timestamp)

    settings = RunSettings.model_validate(
        {
            "model": artifact,
            "source": str(video),
            "device_id": "demo",
            "lines": [{"name": "L", "points": "320,0,320,360"}],
            "zones": [{"name": "Z", "polygon": "200,150,440,150,440,330,200,330"}],
            "intervals": {"bin": "30s", "history": str(tmp / "history-demo.sqlite"), "sync": "normal"},
        }
    )
    tracker = SourceClock()
    intervals = IntervalSink(
        settings.intervals,
        device_id="demo",
        forget_after_s=3.0,
        timer_s=None,
        clock=lambda: T0 + offset + 6.0 * tracker.now,
    )
    detector = Detector.from_artifact(artifact)
    pipeline = Pipeline(
        open_source(str(video)),
        detector,
        tracker,
        build_counters(settings, detector.labels),
        sinks=[JsonlEventSink(tmp / f"{name}.jsonl"), intervals],
        device_id="demo",
    )
    return pipeline.run().to_json()


def test_demo_scene_intervals_equal_events_across_a_restart(demo_fp32_artifact: Path, tmp_path: Path) -> None:
    from edgetally.demo.scene import SceneConfig, render_scene

    video = tmp_path / "scene.mp4"
    render_scene(SceneConfig(seconds=12, seed=7), video)
    first = _run_demo(demo_fp32_artifact, video, tmp_path, "run1", 0.0)  # clock T0 .. T0+72: stops 12 s into a bin
    second = _run_demo(demo_fp32_artifact, video, tmp_path, "run2", 80.0)  # restarted 8 s later, in the same bin
    events = _add(_event_sums(tmp_path / "run1.jsonl"), _event_sums(tmp_path / "run2.jsonl"))
    assert sum(events.values()) >= 20 and any(k[0] == "Z" for k in events)
    assert _history_sums(tmp_path / "history-demo.sqlite") == events
    totals = _add(
        *[
            {(c, k, d): n for c, per in run["counts"].items() for k, dirs in per.items() for d, n in dirs.items() if n}
            for run in (first, second)
        ]
    )
    assert totals == events
    store = HistoryStore(tmp_path / "history-demo.sqlite", "demo")
    bins = {b.start - T0: b for b in store.bins()}
    assert sorted(bins) == [0, 30, 60, 90, 120, 150]  # run 1: T0 .. T0+72, run 2: T0+80 .. T0+152
    across = bins[60]  # 60..90: the first run's last 12 s, the second run's first 10 s
    assert bins[0].closed and across.closed and not bins[150].closed  # the last bin stays open for the next start
    assert across.observed_s == pytest.approx(12.0 + 10.0, abs=1.0)
    assert across.frames == pytest.approx((12 + 10) / 6 * 15, abs=3)


@pytest.mark.slow  # ~45 s under load; the outage itself is covered fast in test_intervals_mqtt.py
@pytest.mark.skipif(MOSQUITTO is None, reason="needs mosquitto (scripts/test.sh installs it as root)")
def test_real_video_intervals_equal_events_across_a_broker_outage(
    yolox_fp32_artifact: Path, shared_data: Path, tmp_path: Path
) -> None:
    # The rows are watched on a second broker the runner's broker bridges to (mqtt_support.bridge_to).
    observer = Mosquitto(tmp_path / "observer").start()
    sub = Subscriber(observer.port, "edgetally/road/intervals").start()
    broker = Mosquitto(
        tmp_path / "mq", extra=bridge_to(observer.port, "edgetally/road/intervals", "intervals-bridge")
    ).start()
    port = broker.port
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {yolox_fp32_artifact}\nsource: {shared_data / 'videos/traffic_road.mp4'}\ndevice_id: road\n"
        "classes: [car, truck, bus, motorcycle]\nlines:\n  - {name: L, points: [[320, 0], [320, 360]]}\n"
        f"intervals: {{bin: 10s, history: {tmp_path / 'history-road.sqlite'}}}\n"
        f"outputs: {{events: {tmp_path / 'events.jsonl'}}}\n"
        f"mqtt: {{url: 'mqtt://127.0.0.1:{port}', outbox: {tmp_path / 'outbox.sqlite'}, reconnect_max_s: 2, close_timeout_s: 60}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # At 0.75 x real time the 20 s video runs ~27 s: at least two 10 s bins close during the run.
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgetally", "run", "--config", str(config), "--speed", "0.75"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        events = tmp_path / "events.jsonl"
        assert wait_until(lambda: events.exists() and len(read_events(events)) >= 3, 300, 0.05)
        broker.stop()
        time.sleep(12)  # a whole bin closes while the broker is away
        broker.start()
        assert proc.wait(timeout=600) == 0
        history = tmp_path / "history-road.sqlite"
        assert _history_sums(history) == _event_sums(events)  # every event in its bin, the open one included
        closed = _history_sums(history, closed_only=True)
        assert wait_until(lambda: _row_sums(sub.on("edgetally/road/intervals")) == closed, 30)
        rows = [json.loads(p) for p in sub.on("edgetally/road/intervals")]
        keys = [(r["start_ts"], r["counter"], r["class"], r["direction"]) for r in rows]
        assert len(keys) == len(set(keys)) and len({r["start_ts"] for r in rows}) >= 2
    finally:
        proc.kill()
        sub.stop()
        broker.stop()
        observer.stop()


def _row_sums(payloads: list[bytes]) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for p in payloads:
        r = json.loads(p)
        if r["count"]:
            key = (r["counter"], r["class"], r["direction"])
            out[key] = out.get(key, 0) + r["count"]
    return out

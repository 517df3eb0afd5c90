"""The service hooks on a REAL pipeline in a subprocess: sd_notify to a real AF_UNIX socket, the
health server over HTTP, signals, a real MJPEG camera that stalls, a real model and video."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mjpeg_server import MjpegServer
from mqtt_support import MOSQUITTO, Mosquitto, Subscriber
from service_helpers import REPO, NotifyListener, http_get, metric_value, service_env

HARNESS = Path(__file__).with_name("service_harness.py")


@pytest.fixture(scope="module")
def artifact(yolox_fp32_artifact: Path) -> Path:
    return yolox_fp32_artifact


@pytest.fixture
def listener():
    rx = NotifyListener()
    yield rx
    rx.close()


def write_config(path: Path, **settings: object) -> Path:
    path.write_text(yaml.safe_dump({k: v for k, v in settings.items()}, sort_keys=False))
    return path


class Service:
    """The harness as systemd would run it; ``started`` is the monotonic time of the fork."""

    def __init__(self, config: Path, env: dict[str, str], stall_s: float | None = None) -> None:
        self.started = time.monotonic()
        args = [sys.executable, str(HARNESS), str(config), "127.0.0.1:0"] + ([str(stall_s)] if stall_s else [])
        self.proc = subprocess.Popen(
            args, env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"harness died: {self.proc.wait(5)} {self.proc.stderr.read()[-3000:]}")
        self.base = f"http://127.0.0.1:{json.loads(line)['health_port']}"

    def metrics(self) -> str:
        return http_get(self.base + "/metrics")[1]

    def finish(self, timeout: float = 30.0) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err[-3000:]
        return json.loads(out.strip().splitlines()[-1])


def test_ready_after_first_frame_then_counts_published_and_scraped(
    artifact: Path, listener: NotifyListener, shared_data: Path, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "broker").start() if MOSQUITTO else None
    sub = Subscriber(broker.port, "edgetally/#").start() if broker else None
    try:
        mqtt = {"url": broker.url, "device_id": "pole1", "outbox": str(tmp_path / "outbox.sqlite")} if broker else None
        config = write_config(
            tmp_path / "run.yaml",
            model=str(artifact),
            source=str(shared_data / "videos/traffic_road.mp4"),
            lines=[{"name": "L", "points": [[320, 0], [320, 360]]}],
            max_frames=80,
            outputs={"events": str(tmp_path / "events.jsonl")},
            mqtt=mqtt,
        )
        svc = Service(config, service_env(listener, watchdog_usec=10_000_000))
        ready = listener.wait_for("READY=1", timeout=60)
        ready_msg = next(m for t, m in listener.messages if m.startswith("READY=1"))
        assert ", 1 frames;" in ready_msg  # sent from the first frame, not at start
        scrapes, first_count = [], None
        while svc.proc.poll() is None and len(scrapes) < 400:
            if first_count is None and sub is not None and any("/counter/L/" in m[0] for m in sub.messages):
                first_count = time.monotonic()
            try:
                scrapes.append((time.monotonic(), svc.metrics()))
            except OSError:  # the run ended (80 frames) while we were scraping
                break
            time.sleep(0.05)
        summary = svc.finish()
    finally:
        if sub is not None:
            sub.stop()
        if broker is not None:
            broker.stop()
    frames = [metric_value(text, "edgetally_frames_total") or 0 for _, text in scrapes]
    assert frames == sorted(frames) and frames[-1] > frames[0]
    counted = [metric_value(text, 'edgetally_count_total{counter="L"') for _, text in scrapes]
    assert any(c for c in counted), "no count ever showed up in /metrics"
    assert summary["frames"] == 80 and listener.wait_for("STOPPING=1") > ready
    assert broker is None or first_count is not None, "no retained counter reached the broker"
    line = f"READY {ready - svc.started:.2f} s after process start"
    if first_count is not None:
        line += f"; first count retained on the broker by {first_count - svc.started:.2f} s (+-0.05 s)"
    print("\n" + line)


def test_watchdog_stops_while_the_camera_stalls_and_healthz_says_why(
    artifact: Path, listener: NotifyListener, tmp_path: Path
) -> None:
    camera = MjpegServer(size=(64, 48), fps=15).start()
    try:
        config = write_config(
            tmp_path / "run.yaml",
            model=str(artifact),
            source=camera.url,
            lines=[{"name": "L", "points": [[32, 0], [32, 48]]}],
            capture={"watchdog_s": 20},
        )
        svc = Service(config, service_env(listener, watchdog_usec=1_000_000), stall_s=1.5)
        ready = listener.wait_for("READY=1", timeout=60)
        time.sleep(2.0)
        assert http_get(svc.base + "/healthz") == (200, "ok\n")
        assert listener.count("WATCHDOG=1", ready, time.monotonic()) >= 3
        m1 = metric_value(svc.metrics(), "edgetally_frames_total")
        time.sleep(1.0)
        assert metric_value(svc.metrics(), "edgetally_frames_total") > m1
        camera.paused.set()
        paused = time.monotonic()
        time.sleep(3.5)
        code, body = http_get(svc.base + "/healthz")
        assert code == 503 and body.startswith("frames stalled: no frame for ")
        resumed = time.monotonic()
        assert listener.count("WATCHDOG=1", paused + 1.0, resumed) == 0
        camera.paused.clear()
        listener.wait_for("WATCHDOG=1", after=resumed, timeout=10)
        time.sleep(0.5)
        assert http_get(svc.base + "/healthz")[0] == 200
        svc.proc.send_signal(signal.SIGTERM)
        svc.finish()
        assert listener.wait_for("STOPPING=1", after=resumed)
    finally:
        camera.stop()


def test_sighup_reloads_a_changed_line_with_reloading_then_ready(
    artifact: Path, listener: NotifyListener, tmp_path: Path
) -> None:
    camera = MjpegServer(size=(64, 48), fps=15).start()
    try:
        settings = dict(model=str(artifact), source=camera.url, lines=[{"name": "A", "points": [[32, 0], [32, 48]]}])
        config = write_config(tmp_path / "run.yaml", **settings)
        svc = Service(config, service_env(listener))
        ready = listener.wait_for("READY=1", timeout=60)
        assert 'edgetally_counter_info{counter="A",kind="line"} 1' in svc.metrics()
        settings["lines"] = [{"name": "B", "points": [[0, 24], [64, 24]]}]
        write_config(config, **settings)
        hup = time.monotonic()
        svc.proc.send_signal(signal.SIGHUP)
        reloading = listener.wait_for("RELOADING=1", after=hup)
        assert listener.wait_for("MONOTONIC_USEC=", after=hup) == reloading
        ready_again = listener.wait_for("READY=1", after=reloading + 1e-6)
        time.sleep(1.0)
        text = svc.metrics()
        assert 'counter="B"' in text and 'counter="A"' not in text
        svc.proc.send_signal(signal.SIGTERM)
        summary = svc.finish()
        assert listener.wait_for("STOPPING=1", after=ready_again) and "B" in summary["counts"]
        assert ready < hup
    finally:
        camera.stop()

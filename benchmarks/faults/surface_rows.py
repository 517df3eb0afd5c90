"""Dashboard (item 6), validation (7), install and signals (8, 3), the health server (9)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.faults.common import REPO, Row, Scene


def dashboard_row() -> Row:
    from edgetally.dashboard.state import DashboardState

    state = DashboardState(max_devices=256)
    state.handle("edgetally/cam1/counter/L/car/in", b"3")
    hostile = [
        ("edgetally/cam1/events", b"[1, 2]"),
        ("edgetally/cam1/stats", b'{"fps": NaN}'),
        ("edgetally/cam1/events", b"[" * 5000),
    ] + [(f"edgetally/fake{i}/state", b"ready") for i in range(20_000)]
    for topic, payload in hostile:
        state.handle(topic, payload)
    state.handle("edgetally/cam1/counter/L/car/in", b"7")
    data = json.loads(state.dumps(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    shown = data["devices"]["cam1"]["counters"]["L"]["car"]["in"]
    return Row(
        "a JSON list on events, NaN stats, 20k fake device names (dashboard)",
        f"{state.refused} refused, {len(data['devices'])} devices kept (cap 256), state.json strict JSON",
        "0 lost" if shown == 7 else "the update after the flood was lost",
        "yes",
    )


def health_row() -> Row:
    from edgetally.service.health import HealthServer, MetricsHook

    server = HealthServer(MetricsHook(), "127.0.0.1:0").start()
    host, port = server.address
    before = threading.active_count()
    socks = [socket.create_connection((host, port)) for _ in range(1000)]
    time.sleep(1.0)
    threads = threading.active_count() - before
    start = time.monotonic()
    answered = False
    while not answered and time.monotonic() - start < 20:
        answered = _answers(f"http://{host}:{port}/healthz")
    for sock in socks:
        sock.close()
    server.close()
    return Row(
        "1000 idle connections to /healthz",
        f"{threads} threads (cap 32), each idle one dropped after 5 s; "
        f"/healthz answered {time.monotonic() - start:.1f} s later",
        "n/a",
        "yes" if answered else "no",
    )


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        return True  # 503 "no frame yet": the server answered
    except OSError:
        time.sleep(0.5)
        return False
    return True


def install_row(work: Path) -> Row:
    from edgetally.service.bundle import FALLBACK, _env_file

    bundle = work / "edgetally-bundle"
    (bundle / "systemd").mkdir(parents=True)
    (bundle / "wheels").mkdir()
    for name in ("install.sh", "uninstall.sh", "edgetally.service"):
        src = REPO / "systemd" / name
        (bundle / ("systemd/" if name.endswith(".service") else "") / name).write_bytes(src.read_bytes())
    (bundle / "config.yaml").write_text("model: m\nsource: s\n")
    wheel = bundle / "wheels/edgetally-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"w")
    marker = work / "pwned"
    (bundle / "bundle.env").write_text(_env_file(FALLBACK["generic"], wheel, "0.1.0", False) + f"touch {marker}\n")
    subprocess.run(
        ["sh", "-c", "find . -type f ! -name SHA256SUMS -printf '%P\\n' | sort | xargs sha256sum > SHA256SUMS"],
        cwd=bundle,
        check=True,
    )
    env = {**os.environ, "DESTDIR": str(work / "root"), "PYTHON": "/nonexistent", "SYSTEMCTL": "true"}
    proc = subprocess.run(["bash", str(bundle / "install.sh")], env=env, capture_output=True, text=True, check=False)
    said = proc.stderr.strip().splitlines()[-1].replace("edgetally install: error: ", "")[:60]
    return Row(
        "a command appended to bundle.env (checksums updated too)",
        f"refused: {said}...",
        "n/a",
        "ran the command!" if marker.exists() else "not run",
    )


def image_bomb_row(work: Path) -> Row:
    import resource

    import cv2
    import numpy as np

    from edgetally.capture import CaptureOptions, open_source
    from edgetally.errors import CameraError

    folder = work / "bomb"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    from fault_sources import png_bomb

    png_bomb(folder / "b.png", 20000, 20000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        with open_source(str(folder), CaptureOptions(isolate=False)) as src:
            list(src)
        outcome = "decoded!"
    except CameraError as exc:
        outcome = f"refused in {1000 * (time.perf_counter() - start):.0f} ms: {str(exc).split(': ', 1)[1][:45]}..."
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return Row("a 1 KB PNG that says 20000x20000 in an image folder", f"{outcome} (+{grown:.0f} MB peak)", "n/a", "yes")


def bad_config_row(work: Path) -> Row:
    path = work / "bad.yaml"
    path.write_text(
        "model: a\nsource: b\nmqtt:\n  url: http://x\n  qos: 7\n  colour: red\ntracker:\n"
        "  track_buffer_s: -5\nlines:\n  - name: L\n    points: [[.nan, 0], [1, 1]]\n"
        "zones:\n  - name: Z\n    polygon: [[0, 0], [1, 1], [2, 2]]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "edgetally", "validate-config", str(path)], capture_output=True, text=True, check=False
    )
    located = [line for line in proc.stderr.splitlines() if line.startswith(f"{path}:")]
    return Row(
        "config: mqtt http://x, qos 7, unknown key, tracker -5, NaN line, zero-area zone",
        f"validate-config exit {proc.returncode}, {len(located)} errors as file:line: key: message",
        "n/a",
        "n/a",
    )


def sighup_row(scene: Scene, work: Path) -> Row:
    """SIGHUP while the runner loads (before its handler exists): the lead's pipeline change."""
    config = work / "run.yaml"
    config.write_text(
        f"model: {scene.artifact}\nsource: {scene.video}\nlines:\n  - name: L\n    points: 320,0,320,360\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgetally", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    proc.send_signal(signal.SIGHUP)
    code = proc.wait(300)
    outcome = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
    return Row(
        "SIGHUP during start-up (lead: install the handler before loading)",
        outcome,
        "n/a",
        "yes" if code == 0 else "no",
    )

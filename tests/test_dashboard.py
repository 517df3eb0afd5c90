"""The dashboard: state from MQTT messages (table), and the real page in headless Chromium after two
devices published through the runner on one broker (counts read from the DOM, screenshot saved)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from edgetally.dashboard.state import DashboardState

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = Path(tempfile.gettempdir()) / "edgetally-dashboard.png"


@pytest.mark.parametrize(
    "topic, payload, handled",
    [
        ("edgetally/cam1/availability", b"online", True),
        ("edgetally/cam1/state", b"ready", True),
        ("edgetally/cam1/counter/L/car/in", b"7", True),
        ("edgetally/cam1/counter/L/car/in", b"seven", False),
        ("edgetally/cam1/stats", b'{"fps": 12.5}', True),
        ("edgetally/cam1/events", b'{"seq": 1, "ts": 120.0}', True),
        ("edgetally/cam1/snapshot", b"\xff\xd8jpeg", True),
        ("other/cam1/state", b"ready", False),
        ("edgetally/cam1", b"x", False),
        ("edgetally/cam1/counter/L/car", b"1", False),
    ],
)
def test_state_handles_topics(topic: str, payload: bytes, handled: bool) -> None:
    assert DashboardState("edgetally").handle(topic, payload) is handled


def test_state_per_device_and_replayed_events() -> None:
    state = DashboardState("site/edgetally")
    for dev, n in (("a", 3), ("b", 5)):
        state.handle(f"site/edgetally/{dev}/counter/L/truck/out", str(n).encode())
    for seq in (1, 2, 2, 3):  # seq 2 replayed by the outbox after a reconnect: charted once
        state.handle("site/edgetally/a/events", json.dumps({"seq": seq, "ts": 600.5}).encode())
    state.handle("site/edgetally/a/snapshot", b"\xff\xd8jpeg")
    data = state.to_json()["devices"]
    assert data["a"]["counters"] == {"L": {"truck": {"out": 3}}}
    assert data["b"]["counters"] == {"L": {"truck": {"out": 5}}}
    assert data["a"]["per_minute"] == [[600, 3]]
    assert data["a"]["snapshot_version"] == 1 and state.snapshot("a") == b"\xff\xd8jpeg" and state.snapshot("b") is None


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip(
            "headless Chromium test needs Debian's chromium + chromium-driver (apt-get install -y chromium "
            "chromium-driver; scripts/test.sh installs them when run as root)"
        )
    pytest.importorskip("selenium", reason="needs selenium (dev extra)")
    return browser, driver


def _publish_run(artifact: Path, video: Path, device: str, broker_url: str, work: Path) -> dict:
    from edgetally.config.models import RunSettings
    from edgetally.runner import run_counting

    mqtt = {
        "url": broker_url,
        "outbox": str(work / f"{device}.sqlite"),
        "device_id": device,
        "snapshot_interval_s": 0.5,
    }
    settings = RunSettings.model_validate(
        {
            "model": artifact,
            "source": str(video),
            "device_id": device,
            "mqtt": mqtt,
            "lines": [{"name": "L", "points": "320,0,320,360"}],
        }
    )
    return run_counting(settings)


def _nonzero(counts: dict) -> dict:
    return {c: {d: n for d, n in dirs.items() if n} for c, dirs in counts.items() if any(dirs.values())}


def _dom_counts(driver, device: str) -> dict:
    """Read the count cells in one script call (the page re-renders every second)."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll(`td[data-device='${arguments[0]}'][data-counter]`)]"
        ".map(td => [td.dataset.class, td.dataset.dir, Number(td.textContent)])",
        device,
    )
    out: dict = {}
    for cls, direction, n in rows:
        out.setdefault(cls, {})[direction] = n
    return out


def test_dashboard_in_headless_chromium(tmp_path: Path, demo_fp32_artifact: Path) -> None:
    browser, driver_path = _chromium()
    pytest.importorskip("amqtt", reason="needs the broker extra")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from edgetally.dashboard.server import Dashboard
    from edgetally.demo.scene import SceneConfig, render_scene
    from edgetally.sinks.broker import run_embedded_broker
    from tests.mqtt_support import free_port, wait_until

    artifact = demo_fp32_artifact
    broker = run_embedded_broker("127.0.0.1", free_port())
    board = Dashboard(broker.url, 0).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        assert board.wait_connected()
        driver.get(board.url)
        summaries = {}
        for device, seed in (("cam-north", 7), ("cam-south", 11)):
            video = tmp_path / f"{device}.mp4"
            render_scene(SceneConfig(seconds=8, seed=seed), video)
            summaries[device] = _publish_run(artifact, video, device, broker.url, tmp_path)
        for device, summary in summaries.items():
            expected = {c: d for c, d in summary["counts"]["L"].items() if any(d.values())}
            assert sum(n for d in expected.values() for n in d.values()) > 0
            ok = wait_until(lambda d=device, e=expected: _nonzero(_dom_counts(driver, d)) == _nonzero(e), timeout=15)
            assert ok, f"{device}: page shows {_dom_counts(driver, device)}, runner counted {expected}"
        badge = driver.execute_script(
            "return document.querySelector('section[data-device=\"cam-north\"] [data-role=availability]').textContent"
        )
        assert badge == "stopped"
        stale = driver.execute_script(  # its retained state is still "ready": not shown beside "stopped"
            "return document.querySelector('section[data-device=\"cam-north\"] [data-role=state]').hidden"
        )
        assert stale is True
        assert wait_until(
            lambda: driver.execute_script(
                "return [...document.querySelectorAll('img.snap')].every(i => i.complete && i.naturalWidth === 640)"
            ),
            timeout=10,
        ), "snapshots not shown"
        time.sleep(0.5)
        driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 10_000
    finally:
        driver.quit()
        board.stop()
        broker.stop()

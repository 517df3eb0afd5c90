"""The dashboard against hostile or broken publishers: every message validated, none can stop the
subscriber or poison /state.json (NaN), and what is kept stays bounded. The end-to-end case runs
`edge dashboard` with a password file against a real mosquitto that requires it, floods it with
bad messages and fake devices, and reads the page in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from mqtt_support import MOSQUITTO, Mosquitto, free_port, wait_until

from edgetally.dashboard.state import MAX_CLASSES, MAX_COUNTERS, DashboardState


def _strict(text: str | bytes) -> dict:
    """json.loads as a browser's JSON.parse: NaN and Infinity are errors."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


HOSTILE = [
    # (topic under edgetally/cam1/, payload) -> refused, and the state is unchanged
    ("events", b"[1, 2, 3]"),  # a list: killed the subscriber thread ('list' object has no attribute 'get')
    ("events", b"[" * 100_000 + b"]" * 100_000),  # too big (and too deep for the json module)
    ("events", b'{"seq": 1, "ts": Infinity}'),
    ("events", b'{"seq": -4, "ts": 100}'),
    ("events", b'{"seq": "7", "ts": 100}'),
    ("events", b"\xff\xfe not utf-8"),
    ("stats", b'"just a string"'),
    ("counter/L/car/in", b"-3"),
    ("counter/L/car/in", b"99999999999999999999999"),
    ("counter/L/car/in", b"NaN"),
    ("counter/L/car/sideways", b"1"),
    ("counter/L/car%20x/in", b"1"),
    ("availability", b"online" * 10),
    ("state", b"<script>alert(1)</script>"),
    ("snapshot", b"GIF89a not a jpeg"),
    ("nonsense", b"1"),
]


@pytest.mark.parametrize("sub, payload", HOSTILE, ids=[f"{t}:{p[:20]!r}" for t, p in HOSTILE])
def test_hostile_message_is_refused_and_changes_nothing(sub: str, payload: bytes) -> None:
    state = DashboardState()
    assert state.handle("edgetally/cam1/counter/L/car/in", b"5")
    before = state.to_json()["devices"]
    assert state.handle(f"edgetally/cam1/{sub}", payload) is False
    assert state.to_json()["devices"] == before and state.refused == 1
    _strict(state.dumps())


def test_nan_stats_never_reach_state_json() -> None:
    state = DashboardState()
    assert state.handle("edgetally/cam1/stats", b'{"fps": NaN, "frames": 10, "infer_ms_p50": Infinity, "x": [1]}')
    assert _strict(state.dumps())["devices"]["cam1"]["stats"] == {"frames": 10}


def test_what_is_kept_is_bounded() -> None:
    state = DashboardState(max_devices=50)
    for i in range(20_000):
        state.handle(f"edgetally/fake{i}/state", b"ready")
    for i in range(MAX_COUNTERS + 10):
        state.handle(f"edgetally/fake0/counter/c{i}/car/in", b"1")
    for i in range(MAX_CLASSES + 10):
        state.handle(f"edgetally/fake0/counter/c0/k{i}/in", b"1")
    for seq in range(1, 30_000):
        state.handle("edgetally/fake0/events", json.dumps({"seq": seq, "ts": seq * 7.0}).encode())
    data = state.to_json()["devices"]
    assert len(data) == 50 and len(data["fake0"]["counters"]) == MAX_COUNTERS
    assert len(data["fake0"]["counters"]["c0"]) == MAX_CLASSES and len(data["fake0"]["per_minute"]) == 60
    assert len(state.dumps()) < 200_000


def _chromium():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip(
            "headless Chromium test needs Debian's chromium + chromium-driver (scripts/test.sh installs them as root)"
        )
    pytest.importorskip("selenium", reason="needs selenium (dev extra)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,900"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


def _publish(port: int, messages: list[tuple[str, bytes, bool]]) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set("edge", "s3cret pass")
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload, retain in messages]
    for info in infos:
        info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto binary not installed (apt-get install mosquitto)")
def test_dashboard_survives_a_hostile_broker_in_chromium(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker", users={"edge": "s3cret pass"}).start()
    secret = tmp_path / "password"
    secret.write_text("s3cret pass\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgetally",
            "dashboard",
            "--mqtt",
            f"mqtt://edge@127.0.0.1:{broker.port}",
            "--password-file",
            str(secret),
            "--port",
            str(port),
            "--max-devices",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    driver = None
    try:
        url = f"http://127.0.0.1:{port}/"
        assert wait_until(lambda: _get(url + "state.json") is not None, 30), "dashboard did not start"
        assert "s3cret" not in " ".join(proc.args)  # the password is nowhere on the command line
        _publish(broker.port, [("edgetally/cam1/counter/L/car/in", b"3", True)])
        assert wait_until(lambda: "cam1" in (_get(url + "state.json") or {}).get("devices", {}), 10), (
            "no data: the dashboard did not log in with the password file"
        )
        hostile = [(f"edgetally/cam1/{t}", p, False) for t, p in HOSTILE]
        hostile += [("edgetally/cam1/stats", b'{"fps": NaN, "frames": 12}', True)]  # retained: every viewer gets it
        hostile += [(f"edgetally/fake{i}/state", b"ready", False) for i in range(2000)]
        _publish(broker.port, hostile + [("edgetally/cam1/counter/L/car/in", b"7", True)])
        driver = _chromium()
        driver.get(url)
        cell = "return document.querySelector(`td[data-device='cam1'][data-class='car'][data-dir='in']`)?.textContent"
        assert wait_until(lambda: driver.execute_script(cell) == "7", 20), (
            "the page does not show the update sent after the flood"
        )
        assert driver.execute_script("return document.querySelector(`[data-stat='frames'] b`).textContent") == "12"
        assert len(driver.find_elements("css selector", "section.card")) == 20
        data = _strict(urllib.request.urlopen(url + "state.json", timeout=5).read())
        assert data["refused"] >= len(HOSTILE) + 1980 and len(data["devices"]) == 20
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)
        broker.stop()


def _get(url: str) -> dict | None:
    try:
        return _strict(urllib.request.urlopen(url, timeout=2).read())
    except OSError:
        return None

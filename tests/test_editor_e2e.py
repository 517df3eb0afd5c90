"""The line editor end to end, in headless Chromium, against a running runner (`edge run --config` on a
video played at real time) with a real mosquitto and the
dashboard: drag a line with the mouse, get refusals (an approach a movement needs renamed away, a
point outside the frame) that change nothing, save a valid edit, and see the device's answer; the
counts carry on through the reload. Then the device page: bars per bin and the OD matrix."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.mqtt_support import MOSQUITTO, Mosquitto, wait_until

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = Path(tempfile.gettempdir()) / "edgetally-editor.png"
ROUND_TRIP = Path(tempfile.gettempdir()) / "edgetally-editor-roundtrip.json"
HISTORY_SHOT = Path(tempfile.gettempdir()) / "edgetally-history.png"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(MOSQUITTO is None, reason="needs mosquitto")]


def _chrome():  # -> webdriver.Chrome
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("needs Debian's chromium + chromium-driver (scripts/test.sh installs them as root)")
    pytest.importorskip("selenium", reason="needs selenium (dev extra)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,900"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture()
def rig(tmp_path: Path):  # -> (driver, dashboard, config path, runner process)
    pytest.importorskip("onnx", reason="packaging the demo detector needs the convert extra")
    from edgetally.converters.package import package_fp32
    from edgetally.dashboard.server import Dashboard
    from edgetally.demo.scene import SceneConfig, render_scene

    driver = _chrome()
    artifact = package_fp32(
        REPO / "models/demo/detector.onnx",
        tmp_path / "art",
        "yolox",
        (192, 320),
        REPO / "models/demo/labels.txt",
        decoder_options={"strides": (8, 16, 32), "nms_iou": 0.3},
    ).directory
    video = tmp_path / "road.mp4"
    render_scene(SceneConfig(seconds=45, seed=7), video)
    broker = Mosquitto(tmp_path / "mq").start()
    config = tmp_path / "run.yaml"
    config.write_text(
        f"# the camera over the road\nmodel: {artifact}\nsource: {video}\ndevice_id: cam1\n"
        "lines:\n  - {name: A, points: [[200, 0], [200, 360]]}\n  - {name: B, points: [[440, 0], [440, 360]]}\n"
        "movements:\n  - {name: road, approaches: [A, B]}\n"
        f"intervals: {{bin: 10s, history: {tmp_path / 'history-cam1.sqlite'}}}\n"
        f"outputs: {{events: {tmp_path / 'events.jsonl'}}}\n"
        f"mqtt: {{url: '{broker.url}', outbox: {tmp_path / 'outbox.sqlite'}, homeassistant: false, snapshot_interval_s: 0.5}}\n"
    )
    board = Dashboard(broker.url, 0).start()
    assert board.wait_connected()
    log = open(tmp_path / "runner.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgetally", "run", "--config", str(config), "--speed", "1"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        yield driver, board, config, proc
    finally:
        proc.kill()
        log.close()
        driver.quit()
        board.stop()
        broker.stop()


def _editor(driver, board) -> None:
    assert wait_until(lambda: (board.state.device_config("cam1") or {}).get("frame") == [640, 360], 60), (
        "no device config"
    )
    assert wait_until(lambda: board.state.snapshot("cam1") is not None, 30), "no snapshot"
    driver.get(board.url + "editor/cam1")
    assert wait_until(
        lambda: driver.execute_script(
            "return window.editor.items.length === 2 && document.getElementById('snap').naturalWidth > 0"
        ),
        20,
    )


def _save(driver) -> dict:
    driver.execute_script("window.editor.lastAnswer = null")
    driver.find_element("id", "save").click()
    assert wait_until(lambda: driver.execute_script("return window.editor.lastAnswer") is not None, 20), (
        "no answer shown"
    )
    return driver.execute_script("return window.editor.lastAnswer")


def _drag(driver, source_from: tuple[float, float], source_to: tuple[float, float]) -> None:
    """Real mouse events: press on a point given in source pixels, move, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("id", "canvas")
    rect = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", canvas)
    k = rect[0] / 640.0  # screen px per source px: the preview is not shown at the source size
    assert abs(k - 1.0) > 0.2, "the test wants a scaled preview"
    start = (source_from[0] * k - rect[0] / 2, source_from[1] * k - rect[1] / 2)  # offsets from the centre
    delta = ((source_to[0] - source_from[0]) * k, (source_to[1] - source_from[1]) * k)
    half = (round(delta[0] / 2), round(delta[1] / 2))
    ActionChains(driver).move_to_element_with_offset(
        canvas, round(start[0]), round(start[1])
    ).click_and_hold().move_by_offset(*half).move_by_offset(*half).release().perform()


def _counters(board) -> dict:
    return json.loads(json.dumps(board.state.to_json()["devices"].get("cam1", {}).get("counters", {})))


def _status(driver) -> str:
    return driver.find_element("id", "status").text


def test_editor_round_trip_against_a_running_runner(rig) -> None:
    driver, board, config, proc = rig
    _editor(driver, board)
    original = config.read_bytes()

    _drag(driver, (200, 360), (260, 330))  # line A's second point, by mouse, on a scaled preview
    a = driver.execute_script("return window.editor.items.find(i => i.name === 'A').points")
    assert a[0] == [200, 0] and abs(a[1][0] - 260) <= 2 and abs(a[1][1] - 330) <= 2, a

    rename = driver.find_element("css selector", "[data-item='B']")
    rename.click()
    name = driver.find_element("id", "name")
    name.clear()
    name.send_keys("exit")
    answer = _save(driver)
    assert not answer["ok"] and "movements.0.approaches.1: unknown approach 'B'" in " ".join(answer["errors"])
    assert "refused, nothing changed" in _status(driver) and config.read_bytes() == original
    name.clear()
    name.send_keys("B")

    driver.find_element("css selector", "input[data-class='car']").click()
    before = _counters(board)
    t0 = time.monotonic()
    answer = _save(driver)
    browser_ms = (time.monotonic() - t0) * 1000.0
    assert answer["ok"], answer
    assert "reloaded: 2 line(s), 0 zone(s), classes car" in answer["message"] and "\u2713" in _status(driver)
    from edgetally.config import load_config

    saved = load_config(config)
    assert saved.classes == ["car"] and [(round(x), round(y)) for x, y in saved.lines[0].points] == [
        (200, 0),
        (round(a[1][0]), round(a[1][1])),
    ]
    assert config.with_name("run.yaml.prev").read_bytes() == original
    assert wait_until(lambda: (board.state.device_config("cam1") or {}).get("classes") == ["car"], 10)
    ROUND_TRIP.write_text(
        json.dumps(
            {
                "device_answer_ms": answer["elapsed_ms"],
                "dashboard_round_trip_ms": answer["round_trip_ms"],
                "browser_ms": round(browser_ms, 1),
            }
        )
    )
    time.sleep(1.0)
    driver.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 20_000

    driver.find_element("css selector", "[data-item='A']").click()
    coords = driver.find_element("id", "coords")
    coords.clear()
    coords.send_keys("200,0,200,900\n")  # typed coordinates are not clamped: the device must refuse them
    saved_bytes = config.read_bytes()
    answer = _save(driver)
    assert (
        not answer["ok"] and "lines.0.points.1: point (200, 900) of 'A' is outside the 640x360 frame" in answer["error"]
    )
    assert "outside the 640x360 frame" in _status(driver) and config.read_bytes() == saved_bytes
    assert proc.poll() is None, "the runner must keep running"
    running = board.state.device_config("cam1") or {}
    assert running.get("classes") == ["car"] and running["lines"][0]["points"][1] != [200, 900]  # the old config runs

    driver.get(board.url + "device/cam1")
    assert wait_until(
        lambda: driver.execute_script("return document.querySelectorAll('[data-bar][data-counter=A]').length") >= 2, 40
    )
    assert wait_until(
        lambda: driver.execute_script(
            "return [...document.querySelectorAll('table[data-junction=road] td')].some(td => Number(td.textContent) > 0)"
        ),
        40,
    )
    driver.save_screenshot(str(HISTORY_SHOT))

    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    lines = out.decode().strip().splitlines()
    assert proc.returncode == 0 and lines, (config.parent / "runner.log").read_text()[-3000:]
    summary = json.loads(lines[-1])
    for counter, per in before.items():  # the reload lost no count: totals only grew
        for cls, dirs in per.items():
            for d, n in dirs.items():
                assert summary["counts"][counter][cls][d] >= n

"""The device page and the editor in headless Chromium, fed by messages published on a real mosquitto
as a device publishes them: bars per bin (a partly observed bin hatched), the OD matrix, and the
editor's coordinates in source pixels when the snapshot is smaller than the camera frame."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.mqtt_support import MOSQUITTO, Mosquitto, wait_until

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs mosquitto (scripts/test.sh installs it as root)")


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


def _row(start: int, counter: str, kind: str, cls: str, direction: str, count: int, observed: float) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "start_ts": start,
            "end_ts": start + 900,
            "bin_s": 900,
            "device": "cam9",
            "counter": counter,
            "kind": kind,
            "class": cls,
            "direction": direction,
            "count": count,
            "frames": 100,
            "observed_s": observed,
        }
    ).encode()


def test_device_page_and_editor_scaling(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt
    from selenium.webdriver.common.action_chains import ActionChains

    from edgetally.dashboard.server import Dashboard

    driver = _chrome()
    broker = Mosquitto(tmp_path / "mq").start()
    board = Dashboard(broker.url, 0, editable=False).start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        assert board.wait_connected()
        t = 1_800_000_000
        rows = [
            _row(t, "north", "line", "car", "in", 7, 900.0),
            _row(t + 900, "north", "line", "car", "in", 2, 300.0),
            _row(t, "junction", "movement", "car", "north->east", 4, 900.0),
            _row(t + 900, "junction", "movement", "bus", "north->east", 1, 300.0),
            _row(t + 900, "junction", "movement", "car", "south->?", 2, 300.0),
        ]
        for payload in rows:
            pub.publish("edgetally/cam9/intervals", payload, qos=1).wait_for_publish(5)
        frame = [1280, 720]  # the camera; its snapshot is published at 960 px wide
        config = {
            "v": 1,
            "lines": [{"name": "north", "points": [[100, 100], [1200, 100]], "anchor": "bottom_center"}],
            "zones": [],
            "classes": None,
            "labels": ["car", "bus"],
            "movements": [],
            "frame": frame,
            "editable": True,
        }
        pub.publish("edgetally/cam9/config", json.dumps(config).encode(), qos=1, retain=True).wait_for_publish(5)
        _, jpeg = cv2.imencode(".jpg", np.full((540, 960, 3), 90, np.uint8))
        pub.publish("edgetally/cam9/snapshot", jpeg.tobytes(), qos=1, retain=True).wait_for_publish(5)
        assert wait_until(lambda: len(board.state.interval_rows("cam9")) == 5 and board.state.snapshot("cam9"), 20)

        driver.get(board.url + "device/cam9")
        bars = "return [...document.querySelectorAll('[data-bar][data-counter=north]')].map(b => [b.dataset.count, b.className])"
        assert wait_until(lambda: driver.execute_script(bars) == [["7", "bar"], ["2", "bar partial"]], 20), (
            driver.execute_script(bars)
        )
        cells = driver.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('table[data-junction=junction] td')]"
            ".map(td => [td.dataset.origin + '>' + td.dataset.destination, Number(td.textContent)]))"
        )
        assert cells == {"north>east": 5, "north>?": 0, "south>east": 0, "south>?": 2}

        driver.get(board.url + "editor/cam9")
        assert wait_until(
            lambda: driver.execute_script(
                "return window.editor.items.length === 1 && document.getElementById('snap').naturalWidth === 960"
            ),
            20,
        )
        assert driver.find_element("id", "save").get_attribute("disabled") is not None  # --read-only dashboard
        canvas = driver.find_element("id", "canvas")
        width, height = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", canvas
        )
        driver.find_element("css selector", "[data-tool=line]").click()
        # drag from the screen point over source (640, 360) to the one over (960, 540)
        k = width / frame[0]
        ActionChains(driver).move_to_element_with_offset(
            canvas, round(640 * k - width / 2), round(360 * k - height / 2)
        ).click_and_hold().move_by_offset(round(160 * k), round(90 * k)).move_by_offset(
            round(160 * k), round(90 * k)
        ).release().perform()
        line = driver.execute_script("return window.editor.items[1]")
        assert line["name"] == "line1" and line["kind"] == "line"
        tol = 1.5 / k  # one screen pixel, in source pixels
        (x1, y1), (x2, y2) = line["points"]
        assert abs(x1 - 640) <= tol and abs(y1 - 360) <= tol and abs(x2 - 960) <= tol and abs(y2 - 540) <= tol, line

        driver.find_element("css selector", "[data-tool=zone]").click()  # a zone: three corners, then the first again
        corners = [(100, 400), (400, 400), (250, 650), (100, 400)]
        for x, y in corners:
            ActionChains(driver).move_to_element_with_offset(
                canvas, round(x * k - width / 2), round(y * k - height / 2)
            ).click().perform()
        zone = driver.execute_script("return window.editor.items[2]")
        assert zone["kind"] == "zone" and zone["name"] == "zone1" and len(zone["polygon"]) == 3
        assert all(abs(px - x) <= tol and abs(py - y) <= tol for (px, py), (x, y) in zip(zone["polygon"], corners)), (
            zone
        )
    finally:
        pub.loop_stop()
        driver.quit()
        board.stop()
        broker.stop()

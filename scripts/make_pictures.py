"""Remake the README's pictures: docs/dashboard.png (the live dashboard in headless Chromium while
the demo scene is being counted) and docs/annotated-frame.png (one frame as `edge run --annotate`
draws it: tracks, the counting line with its direction, running counts).

    python scripts/make_pictures.py [--out docs] [--frame 300]

Needs the test environment (scripts/test.sh): the convert, broker and dev extras, and Debian's
chromium + chromium-driver. Deterministic scene and model, so a rerun gives the same pictures up to
timing (which frame the dashboard's snapshot shows, fps).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgetally.annotate import annotate, lines_of  # noqa: E402
from edgetally.hooks import Hook, RunContext  # noqa: E402
from edgetally.structures import FrameResult  # noqa: E402

SEED, SECONDS, LINE = 7, 24.0, "320,0,320,360"
WINDOW = (760, 770)  # one card across the page; headless Chromium keeps ~140 px of the height for itself


class PauseAt(Hook):
    """Draws frame ``index`` like `edge run --annotate`, then holds the frame loop until released,
    so the dashboard can be photographed while the device is online and counting."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.image: np.ndarray | None = None
        self.reached, self.release = threading.Event(), threading.Event()
        self._context: RunContext | None = None

    def open(self, context: RunContext) -> None:
        self._context = context

    def frame(self, result: FrameResult) -> None:
        if result.frame.index != self.index or self._context is None:
            return
        labels = self._context.model.labels if self._context.model is not None else ()
        self.image = annotate(
            result.frame.image, result.tracks, labels, lines_of(self._context), self._context.totals.values
        )
        self.reached.set()
        self.release.wait(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not browser or not driver:
        raise SystemExit("needs Debian's chromium and chromium-driver (scripts/test.sh installs them as root)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


def save_png(image: np.ndarray, path: Path, width: int | None = None) -> None:
    """BGR image -> a small palette PNG (256 colours: a third of the size, the same to the eye)."""
    import cv2
    from PIL import Image

    if width is not None and image.shape[1] > width:
        height = round(image.shape[0] * width / image.shape[1])
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    rgb = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    rgb.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def _artifact(work: Path) -> Path:
    from edgetally.converters.package import package_fp32
    from edgetally.demo.model_step import DECODER_OPTIONS, INPUT_HW, model_files

    onnx, labels = model_files()
    return package_fp32(onnx, work / "artifact", "yolox", INPUT_HW, labels, decoder_options=DECODER_OPTIONS).directory


def _pipeline(work: Path, broker_url: str, pause: PauseAt) -> Any:
    from edgetally.build import build_pipeline
    from edgetally.config.models import RunSettings
    from edgetally.demo.scene import SceneConfig, render_scene
    from edgetally.sinks.mqtt_settings import MqttSettings
    from edgetally.snapshots import SnapshotPublisher

    video = work / "scene.mp4"
    render_scene(SceneConfig(seconds=SECONDS, seed=SEED), video)
    mqtt = {
        "url": broker_url,
        "outbox": str(work / "outbox.sqlite"),
        "device_id": "junction-north",
        "stats_interval_s": 1.0,
    }
    settings = RunSettings.model_validate(
        {
            "model": _artifact(work),
            "source": str(video),
            "mqtt": mqtt,
            "device_id": "junction-north",
            "lines": [{"name": "L", "points": LINE}],
        }
    )
    snapshots = SnapshotPublisher(MqttSettings.model_validate(mqtt), interval_s=0.2)
    return build_pipeline(settings, hooks=[snapshots, _Pace(), pause])


class _Pace(Hook):
    """About 3x real time: the dashboard's fps and chart look like a live run, not a batch job."""

    def frame(self, result: FrameResult) -> None:
        time.sleep(1 / 75)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--frame", type=int, default=300, help="Frame to photograph (the scene has 24 fps).")
    args = parser.parse_args(argv)
    import cv2

    from edgetally.dashboard.server import Dashboard
    from edgetally.sinks.broker import run_embedded_broker

    broker = run_embedded_broker("127.0.0.1", _free_port())
    board = Dashboard(broker.url, 0).start()
    driver = _browser()
    pause = PauseAt(args.frame)
    with tempfile.TemporaryDirectory(prefix="edge-pictures-") as tmp:
        try:
            board.wait_connected()
            pipeline = _pipeline(Path(tmp), broker.url, pause)
            runner = threading.Thread(target=pipeline.run, name="pipeline")
            runner.start()
            driver.get(board.url)
            if not pause.reached.wait(300):
                raise SystemExit(f"frame {args.frame} never came")
            time.sleep(3.0)  # the page polls every second; the last snapshot and stats arrive
            shot = cv2.imdecode(np.frombuffer(driver.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
            pause.release.set()
            runner.join()
        finally:
            pause.release.set()
            driver.quit()
            board.stop()
            broker.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    assert pause.image is not None
    save_png(shot, args.out / "dashboard.png")
    save_png(pause.image, args.out / "annotated-frame.png")
    for name in ("dashboard.png", "annotated-frame.png"):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

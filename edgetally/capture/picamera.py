"""Raspberry Pi CSI cameras through Picamera2 (libcamera). Imported only for picamera2:N."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetally.capture.live import Connect, Reader
from edgetally.capture.types import CaptureOptions
from edgetally.errors import CameraError

APT_HINT = (
    "picamera2:N needs the picamera2 module: 'sudo apt install python3-picamera2' and a venv "
    "created with --system-site-packages (it is not installable from PyPI with libcamera)"
)


def require_picamera2() -> Any:
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise CameraError(f"{APT_HINT} ({exc})") from exc
    return Picamera2


class Picamera2Reader:
    """cv2.VideoCapture-shaped wrapper. 'RGB888' in libcamera's naming is B,G,R in memory: BGR."""

    def __init__(self, index: int, options: CaptureOptions) -> None:
        picamera2 = require_picamera2()
        self._cam = picamera2(camera_num=index)
        main: dict[str, Any] = {"format": "RGB888"}
        if options.width and options.height:
            main["size"] = (options.width, options.height)
        controls = {"FrameRate": float(options.fps)} if options.fps else {}
        self._cam.configure(self._cam.create_video_configuration(main=main, controls=controls))
        self._cam.start()
        self._open = True

    def isOpened(self) -> bool:
        return self._open

    def read(self) -> tuple[bool, np.ndarray | None]:
        image = self._cam.capture_array("main")
        return image is not None, image

    def release(self) -> None:
        if self._open:
            self._open = False
            self._cam.stop()
            self._cam.close()


def picamera2_connect(index: int, options: CaptureOptions) -> Connect:
    require_picamera2()  # fail at open_source with the apt hint, not inside the reconnect loop

    def connect() -> Reader:
        return Picamera2Reader(index, options)

    return connect

"""A real MJPEG-over-HTTP camera on loopback (multipart/x-mixed-replace, as IP cameras serve it).

Start, stop (drops every client, port refuses), restart on the same port at another size, or
pause (clients stay connected but get no frames: the silent stall a watchdog must catch).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


class MjpegServer:
    def __init__(self, size: tuple[int, int] = (64, 48), fps: float = 30.0, port: int = 0) -> None:
        self.size, self.fps, self.port = size, fps, port
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self, size: tuple[int, int] | None = None) -> MjpegServer:
        self.size = size or self.size
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server, stop = self, self._stop

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                n = 0
                while not stop.is_set():
                    if server.paused.is_set():
                        time.sleep(0.01)
                        continue
                    w, h = server.size
                    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), (n * 5) % 256, np.uint8))
                    data = buf.tobytes()
                    head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                    try:
                        self.wfile.write(head + data + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    n += 1
                    time.sleep(1.0 / server.fps)

        return Handler

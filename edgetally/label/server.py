"""`edge label`'s local web server: the page, the session as JSON, the frames, and one POST per action.

Every action the page sends is applied and written to disk before the answer goes back
(LabelStore.apply), so closing the tab or killing the server loses nothing that was acknowledged.
Binds to 127.0.0.1 by default: the labels and frames are the user's, not the network's.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from edgetally.errors import ConfigError
from edgetally.label.export import export_dataset
from edgetally.label.page import PAGE
from edgetally.label.store import LabelStore

log = logging.getLogger(__name__)
_FRAME = re.compile(r"^/frames/(frame_\d+\.(?:jpg|png))$")
MAX_BODY = 1 << 20


def _handler(store: LabelStore, dataset: Path, val_fraction: float) -> type[BaseHTTPRequestHandler]:
    page = PAGE.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlparse(self.path).path
            frame = _FRAME.match(path)
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page)
            elif path == "/api/session":
                self._json(200, store.snapshot())
            elif frame and (store.directory / "frames" / frame.group(1)).is_file():
                kind = "image/jpeg" if frame.group(1).endswith(".jpg") else "image/png"
                self._send(200, kind, (store.directory / "frames" / frame.group(1)).read_bytes())
            else:
                self._send(404, "text/plain", b"not found\n")

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            try:
                body = self._body()
                if path == "/api/action":
                    self._json(200, {"ok": True, **store.apply(body)})
                elif path == "/api/export":
                    summary = export_dataset(store, dataset, val_fraction)
                    self._json(200, {"ok": True, "message": summary.line()})
                else:
                    self._send(404, "text/plain", b"not found\n")
            except ConfigError as exc:  # LabelError and export refusals: the person can fix these
                self._json(400, {"ok": False, "error": str(exc)})

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ConfigError("request too large")
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as exc:
                raise ConfigError(f"not JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError("expected a JSON object")
            return data

        def _json(self, code: int, data: dict[str, Any]) -> None:
            self._send(code, "application/json", json.dumps(data).encode())

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("http: " + fmt, *args)

    return Handler


class LabelServer:
    """``start()`` returns self; ``url`` is the page; ``stop()`` ends it. The dataset export goes to ``dataset``."""

    def __init__(
        self, store: LabelStore, dataset: Path, port: int = 8090, host: str = "127.0.0.1", val_fraction: float = 0.2
    ) -> None:
        self.store = store
        self._http = ThreadingHTTPServer((host, port), _handler(store, dataset, val_fraction))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="label-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> LabelServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

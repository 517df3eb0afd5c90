"""The dashboard's bridge: paho subscribes to ``<prefix>/+/#``; a small HTTP server (a thread) serves
the page, ``/state.json`` (the page polls it every second) and ``/snapshot/<device>.jpg``.

The page is one self-contained HTML document (inline CSS and JS, chart drawn on a canvas): the
board or laptop showing it may be offline, so nothing comes from a CDN.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlparse

from edgetally.dashboard.page import PAGE
from edgetally.dashboard.state import MAX_DEVICES, DashboardState
from edgetally.service.httpserver import BoundedHTTPServer

log = logging.getLogger(__name__)
_REFUSED_LOG_S = 60.0


def _handler(state: DashboardState) -> type[BaseHTTPRequestHandler]:
    page = PAGE.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page)
            elif path == "/state.json":
                self._send(200, "application/json", state.dumps())
            elif path.startswith("/snapshot/") and path.endswith(".jpg"):
                jpeg = state.snapshot(unquote(path[len("/snapshot/"):-len(".jpg")]))
                self._send(200, "image/jpeg", jpeg) if jpeg else self._send(404, "text/plain", b"no snapshot\n")
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:  # keep the terminal for the demo's output
            log.debug("http: " + fmt, *args)

    return Handler


class MqttBridge:
    """paho subscriber that feeds a DashboardState (also used by `edge demo` to read back counts).

    ``username`` / ``password`` override the URL's (a password in the URL shows in ``ps``)."""

    def __init__(self, mqtt_url: str, state: DashboardState, username: str | None = None,
                 password: str | None = None) -> None:
        from edgetally.sinks.mqtt_settings import parse_mqtt_url

        self.broker = parse_mqtt_url(mqtt_url)
        self.state = state
        self.username = username or self.broker.username
        self.password = password if password is not None else self.broker.password
        self._client: Any = None
        self._refused_logged = 0.0

    def start(self) -> MqttBridge:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgetally-dashboard-{id(self):x}")
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.broker.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 10)
        client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        client.loop_start()
        self._client = client
        return self

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("dashboard: broker %s:%d refused the connection: %s", self.broker.host, self.broker.port, reason)
            return
        client.subscribe(self.state.subscription, qos=1)
        log.info("dashboard: subscribed to %s on %s:%d", self.state.subscription, self.broker.host, self.broker.port)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        """Runs on paho's network thread: an exception here would end it (and every update)."""
        try:
            ok = self.state.handle(msg.topic, bytes(msg.payload))
        except Exception:
            log.exception("dashboard: message on %r could not be handled", getattr(msg, "topic", "?"))
            return
        now = time.monotonic()
        if not ok and now - self._refused_logged >= _REFUSED_LOG_S:
            self._refused_logged = now
            log.warning("dashboard: refused a message on %r (%d refused so far: malformed, or over a size or "
                        "device limit)", msg.topic[:200], self.state.refused)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._client is not None and self._client.is_connected():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None


class Dashboard:
    """MQTT -> state -> HTTP. ``start()`` returns self; ``url`` is the page; ``stop()`` ends both."""

    def __init__(self, mqtt_url: str, port: int = 8080, host: str = "127.0.0.1", prefix: str = "edgetally",
                 username: str | None = None, password: str | None = None, max_devices: int = MAX_DEVICES) -> None:
        self.state = DashboardState(prefix, max_devices)
        self.bridge = MqttBridge(mqtt_url, self.state, username, password)
        self.broker = self.bridge.broker
        self._http = BoundedHTTPServer((host, port), _handler(self.state))
        self._thread = threading.Thread(target=self._http.serve_forever, name="dashboard-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> Dashboard:
        self.bridge.start()
        self._thread.start()
        return self

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.bridge.wait_connected(timeout)

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self.bridge.stop()


__all__ = ["Dashboard", "MqttBridge"]

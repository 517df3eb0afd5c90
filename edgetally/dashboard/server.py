"""The dashboard's bridge: paho subscribes to ``<prefix>/+/#``; a small HTTP server (a thread) serves
the page, ``/state.json`` (the page polls it every second) and ``/snapshot/<device>.jpg``.

The page is one self-contained HTML document (inline CSS and JS, chart drawn on a canvas): the
board or laptop showing it may be offline, so nothing comes from a CDN.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse


from edgetally.dashboard.page import PAGE
from edgetally.dashboard.state import DashboardState

log = logging.getLogger(__name__)


def _handler(state: DashboardState) -> type[BaseHTTPRequestHandler]:
    page = PAGE.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urlparse(self.path).path
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page)
            elif path == "/state.json":
                self._send(200, "application/json", json.dumps(state.to_json()).encode())
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
    """paho subscriber that feeds a DashboardState (also used by `edge demo` to read back counts)."""

    def __init__(self, mqtt_url: str, state: DashboardState) -> None:
        from edgetally.sinks.mqtt_settings import parse_mqtt_url

        self.broker = parse_mqtt_url(mqtt_url)
        self.state = state
        self._client: Any = None

    def start(self) -> MqttBridge:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgetally-dashboard-{id(self):x}")
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_message = lambda c, u, msg: self.state.handle(msg.topic, bytes(msg.payload))
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

    def __init__(self, mqtt_url: str, port: int = 8080, host: str = "127.0.0.1", prefix: str = "edgetally") -> None:
        self.state = DashboardState(prefix)
        self.bridge = MqttBridge(mqtt_url, self.state)
        self.broker = self.bridge.broker
        self._http = ThreadingHTTPServer((host, port), _handler(self.state))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="dashboard-http", daemon=True)

    @property
    def url(self) -> str:
        """The page's address; on 0.0.0.0 (every interface) the machine's name, which a browser
        elsewhere on the LAN can use (http://0.0.0.0 only works on this machine)."""
        host, port = self._http.server_address[:2]
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
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

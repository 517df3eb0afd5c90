"""The dashboard's bridge: paho subscribes to ``<prefix>/+/#``; a small HTTP server (a thread) serves
the page, ``/state.json`` (the page polls it every second) and ``/snapshot/<device>.jpg``; per device,
``/device/<device>`` (interval history, OD matrix; data from ``/api/history/<device>.json``) and
``/editor/<device>`` (line and zone editor: ``/api/config/<device>.json`` in, ``POST /api/config/<device>``
out, which publishes ``cmd/config`` and waits for the device's answer on ``cmd/result``).

The page is one self-contained HTML document (inline CSS and JS, chart drawn on a canvas): the
board or laptop showing it may be offline, so nothing comes from a CDN.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlparse

from edgetally.dashboard.device_page import DEVICE_PAGE
from edgetally.dashboard.editor_page import EDITOR_PAGE
from edgetally.dashboard.history import history_view
from edgetally.dashboard.page import PAGE
from edgetally.dashboard.state import MAX_DEVICES, DashboardState
from edgetally.service.httpserver import BoundedHTTPServer

log = logging.getLogger(__name__)


_REFUSED_LOG_S = 60.0
_MAX_CONFIG_BODY = 65536
CONFIG_TIMEOUT_S = 15.0


def _handler(state: DashboardState, editor: ConfigSender | None) -> type[BaseHTTPRequestHandler]:
    page = PAGE.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page)
            elif path.startswith("/device/"):
                self._send(200, "text/html; charset=utf-8", DEVICE_PAGE.encode("utf-8"))
            elif path.startswith("/editor/"):
                self._send(200, "text/html; charset=utf-8", EDITOR_PAGE.encode("utf-8"))
            elif path.startswith("/api/history/") and path.endswith(".json"):
                rows = state.interval_rows(unquote(path[len("/api/history/") : -len(".json")]))
                self._json(200, history_view(rows))
            elif path.startswith("/api/config/") and path.endswith(".json"):
                config = state.device_config(unquote(path[len("/api/config/") : -len(".json")]))
                self._json(200, {"config": config, "editable": editor is not None})
            elif path == "/state.json":
                self._send(200, "application/json", state.dumps())
            elif path.startswith("/snapshot/") and path.endswith(".jpg"):
                jpeg = state.snapshot(unquote(path[len("/snapshot/") : -len(".jpg")]))
                self._send(200, "image/jpeg", jpeg) if jpeg else self._send(404, "text/plain", b"no snapshot\n")
            else:
                self._send(404, "text/plain", b"not found\n")

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            if not path.startswith("/api/config/"):
                self._json(404, {"ok": False, "error": "not found"})
                return
            if editor is None:
                self._json(403, {"ok": False, "error": "this dashboard is read-only (started with --read-only)"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > _MAX_CONFIG_BODY:
                self._json(
                    413 if length else 400,
                    {"ok": False, "error": f"expected a JSON body of 1..{_MAX_CONFIG_BODY} bytes"},
                )
                return
            try:
                change = json.loads(self.rfile.read(length))
            except ValueError as exc:
                self._json(400, {"ok": False, "error": f"body is not JSON: {exc}"})
                return
            code, answer = editor.send(unquote(path[len("/api/config/") :]), change)
            self._json(code, answer)

        def _json(self, code: int, body: object) -> None:
            self._send(code, "application/json", json.dumps(body).encode())

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

    def __init__(
        self, mqtt_url: str, state: DashboardState, username: str | None = None, password: str | None = None
    ) -> None:
        from edgetally.sinks.mqtt_settings import parse_mqtt_url

        self.broker = parse_mqtt_url(mqtt_url)
        self.state = state
        self.username = username or self.broker.username
        self.password = password if password is not None else self.broker.password
        self._client: Any = None
        self._refused_logged = 0.0
        # Set when the broker acknowledged the subscription (cleared on each connect): before that,
        # a non-retained message (an interval row, an event) published by a device is not delivered.
        self._subscribed = threading.Event()

    def start(self) -> MqttBridge:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgetally-dashboard-{id(self):x}")
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.broker.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
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
        self._subscribed.clear()
        client.subscribe(self.state.subscription, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reasons: Any, properties: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("dashboard: broker refused the subscription to %s: %s", self.state.subscription, reasons)
            return
        self._subscribed.set()
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
            log.warning(
                "dashboard: refused a message on %r (%d refused so far: malformed, or over a size or device limit)",
                msg.topic[:200],
                self.state.refused,
            )

    def publish(self, topic: str, payload: bytes) -> None:
        if self._client is None:
            raise RuntimeError("bridge not started")
        self._client.publish(topic, payload, qos=1)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once connected AND subscribed (what a caller about to publish needs)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._client is not None and self._client.is_connected() and self._subscribed.is_set():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None


class ConfigSender:
    """The editor's save: ``cmd/config`` to the device, then its answer from ``cmd/result`` (by id)."""

    def __init__(self, bridge: MqttBridge, state: DashboardState, timeout_s: float = CONFIG_TIMEOUT_S) -> None:
        self.bridge, self.state, self.timeout_s = bridge, state, timeout_s

    def send(self, device: str, change: object) -> tuple[int, dict[str, object]]:
        if not isinstance(change, dict) or not set(change) <= {"lines", "zones", "classes"} or not change:
            return 400, {"ok": False, "error": "expected an object with lines, zones and/or classes"}
        if self.state.device_config(device) is None:
            return 404, {"ok": False, "error": f"device {device!r} has not published its configuration"}
        request_id = uuid.uuid4().hex[:16]
        t0 = time.monotonic()
        self.bridge.publish(
            f"{self.state.prefix}/{device}/cmd/config", json.dumps({**change, "id": request_id}).encode()
        )
        end = t0 + self.timeout_s
        while time.monotonic() < end:
            answer = self.state.result(device, request_id)
            if answer is not None:
                ms = round((time.monotonic() - t0) * 1000.0, 1)
                return 200, {**answer, "round_trip_ms": ms}
            time.sleep(0.02)
        return 504, {
            "ok": False,
            "error": f"no answer from {device} within {self.timeout_s:g} s: the device is offline, "
            "or the broker's ACL does not let this dashboard publish cmd/config (docs/intervals.md)",
        }


class Dashboard:
    """MQTT -> state -> HTTP. ``start()`` returns self; ``url`` is the page; ``stop()`` ends both.
    ``editable=False``: the line editor is view-only (no ``cmd/config`` is ever published)."""

    def __init__(
        self,
        mqtt_url: str,
        port: int = 8080,
        host: str = "127.0.0.1",
        prefix: str = "edgetally",
        editable: bool = True,
        username: str | None = None,
        password: str | None = None,
        max_devices: int = MAX_DEVICES,
    ) -> None:
        self.state = DashboardState(prefix, max_devices)
        self.bridge = MqttBridge(mqtt_url, self.state, username, password)
        self.broker = self.bridge.broker
        self.editor = ConfigSender(self.bridge, self.state) if editable else None
        self._http = BoundedHTTPServer((host, port), _handler(self.state, self.editor))
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

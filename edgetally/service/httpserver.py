"""A small threaded HTTP server that a board can leave listening for months.

``http.server.ThreadingHTTPServer`` starts one thread per connection with no limit and no
timeout (1000 idle connections held 1014 threads) and prints a traceback for every client that
drops mid-request. This one:

- serves at most ``max_connections`` at a time; a connection beyond that is closed at once;
- gives every connection ``timeout_s`` to send its request (idle keep-alives and slow clients
  are dropped), so the slots come back;
- logs a client that went away at debug level, any other error as one warning line at most
  every ``ERROR_LOG_S`` (with a count), never a traceback per client.

Used by /healthz + /metrics (health.py) and ``edge dashboard``.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32
TIMEOUT_S = 5.0
ERROR_LOG_S = 60.0
_CLIENT_GONE = (ConnectionError, TimeoutError, socket.timeout)


class BoundedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # listen backlog: a burst of connections is accepted (and refused) at once

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int = MAX_CONNECTIONS,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        # The handler's ``timeout`` becomes each connection's socket timeout (StreamRequestHandler).
        handler = type(handler.__name__, (handler,), {"timeout": timeout_s})
        super().__init__(address, handler)
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0
        self.errors = 0
        self._last_error_log = 0.0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)  # full: close now rather than queue a thread
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE):
            log.debug("http: client %s went away: %s", client_address, exc)
            return
        self.errors += 1
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_S:
            self._last_error_log = now
            log.warning(
                "http: request from %s failed: %s: %s (%d failed requests so far)",
                client_address,
                type(exc).__name__,
                exc,
                self.errors,
            )


_S = TypeVar("_S", bound="BackgroundServer")


class BackgroundServer:
    """A BoundedHTTPServer on a daemon thread: ``start()``, ``address``, ``close()``. ``what`` names
    it in the error a busy or forbidden address gives (ConfigError, exit 2) and in the start log."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], what: str) -> None:
        from edgetally.errors import ConfigError

        self.what = what
        try:
            self._httpd = BoundedHTTPServer(address, handler)
        except OSError as exc:
            raise ConfigError(f"{what} {address[0]}:{address[1]}: cannot listen: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=what, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self: _S) -> _S:
        self._thread.start()
        log.info("%s: http://%s:%d/healthz and /metrics", self.what, *self.address)
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

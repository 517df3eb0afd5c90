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
from typing import Any

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

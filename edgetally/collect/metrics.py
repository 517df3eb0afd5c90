"""The collector's numbers: thread-safe counters, a Prometheus text page and /healthz.

Served at ``--metrics 127.0.0.1:9109`` (loopback by default, like the runner's 9108). Every
refusal is a ``edgetally_collect_rejected_total{reason=...}`` sample and every reported
sequence gap moves ``edgetally_collect_seq_gaps_total``: a lost event is never silent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from edgetally.service.health import parse_addr
from edgetally.service.httpserver import BackgroundServer

log = logging.getLogger(__name__)

DEFAULT_ADDR = "127.0.0.1:9109"
_PREFIX = "edgetally_collect"

# name, type, help; the key in CollectMetrics.counters / .gauges is the name
_SERIES = [
    ("messages_total", "counter", "MQTT messages received on the collector's topics."),
    ("stored_total", "counter", "Rows written, per kind (events, intervals, status)."),
    ("duplicates_total", "counter", "Events delivered again (same device and seq, same content): not stored twice."),
    ("rejected_total", "counter", "Messages refused, per reason; none of them is stored."),
    ("ignored_total", "counter", "Messages on topics the collector does not read."),
    ("spooled_total", "counter", "Messages written to the local spool while the database was away."),
    ("db_errors_total", "counter", "Times the database went away (the collector spools and retries)."),
    ("seq_gaps_total", "counter", "Sequence gaps reported (see the seq_gaps table)."),
    ("mqtt_reconnects_total", "counter", "Connections to the broker lost."),
    ("spool_depth", "gauge", "Messages waiting in the local spool."),
    ("db_up", "gauge", "1 while the database is reachable."),
    ("mqtt_connected", "gauge", "1 while connected to the broker."),
    ("missing_events", "gauge", "Events still missing over every open gap."),
    ("queue_depth", "gauge", "Messages received and not yet stored or spooled."),
]


class CollectMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: defaultdict[tuple[str, str], float] = defaultdict(float)  # (name, label value) -> n
        self.gauges: dict[str, float] = {}
        self.lags: deque[float] = deque(maxlen=4096)
        self.started = time.time()

    def inc(self, name: str, n: float = 1, label: str = "") -> None:
        with self._lock:
            self.counters[(name, label)] += n

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self.gauges[name] = float(value)

    def add_lags(self, lags: list[float]) -> None:
        with self._lock:
            self.lags.extend(lags)

    def total(self, name: str, label: str | None = None) -> float:
        with self._lock:
            return sum(n for (k, lab), n in self.counters.items() if k == name and (label is None or lab == label))

    def by_label(self, name: str) -> dict[str, float]:
        with self._lock:
            return {lab: n for (k, lab), n in self.counters.items() if k == name}

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        with self._lock:
            counters, gauges, lags = dict(self.counters), dict(self.gauges), sorted(self.lags)
        out: list[str] = []
        for name, kind, help_ in _SERIES:
            out.append(f"# HELP {_PREFIX}_{name} {help_}\n# TYPE {_PREFIX}_{name} {kind}\n")
            if kind == "gauge":
                out.append(f"{_PREFIX}_{name} {gauges.get(name, 0.0):.6g}\n")
                continue
            samples = {lab: n for (k, lab), n in counters.items() if k == name} or {"": 0}
            label = {"stored_total": "kind", "rejected_total": "reason", "messages_total": "kind"}.get(name, "")
            for lab, n in sorted(samples.items()):
                labels = f'{{{label}="{lab}"}}' if label and lab else ""
                out.append(f"{_PREFIX}_{name}{labels} {n:.6g}\n")
        out.append(
            f"# HELP {_PREFIX}_event_lag_seconds Event counted on the device -> row stored "
            f"(last {len(lags)} events).\n# TYPE {_PREFIX}_event_lag_seconds summary\n"
        )
        for q in (0.5, 0.99):
            if lags:
                out.append(
                    f'{_PREFIX}_event_lag_seconds{{quantile="{q}"}} {lags[min(len(lags) - 1, int(q * len(lags)))]:.6g}\n'
                )
        out.append(f"{_PREFIX}_start_time_seconds {self.started:.6g}\n")
        return "".join(out)


class MetricsServer(BackgroundServer):
    """/metrics and /healthz on a daemon thread. ``health()`` returns None when healthy, else why not."""

    def __init__(self, metrics: CollectMetrics, health: Callable[[], str | None], addr: str = DEFAULT_ADDR) -> None:
        super().__init__(parse_addr(addr), _handler(metrics, health), "collect --metrics")


def _handler(metrics: CollectMetrics, health: Callable[[], str | None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # scrapes would flood the journal
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                reason = health()
                self._reply(503 if reason else 200, f"{reason or 'ok'}\n", "text/plain; charset=utf-8")
            elif path == "/metrics":
                self._reply(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
            else:
                self._reply(404, "try /healthz or /metrics\n", "text/plain; charset=utf-8")

        def _reply(self, code: int, body: str, ctype: str) -> None:
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler

"""/healthz and Prometheus /metrics on a small threaded HTTP server (no prometheus_client).

Default address: ``127.0.0.1:9108`` (loopback only: the numbers are not secret, but nothing on a
board should listen on the network unless asked; use ``0.0.0.0:9108`` to let Prometheus scrape
from another host). ``MetricsHook`` is a pipeline hook: the frame loop hands it cheap,
immutable snapshots, so the HTTP thread never iterates a dict the frame loop is changing.

/healthz: 200 ``ok`` while frames flow and sink workers live; 503 with the reason otherwise
(``starting: no frame yet``, ``frames stalled: no frame for 42.0 s``, ``MqttSink worker stopped``,
``stopped (error)``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from edgetally.errors import ConfigError
from edgetally.hooks import Hook, RunContext
from edgetally.service.httpserver import BackgroundServer
from edgetally.structures import FrameResult

log = logging.getLogger(__name__)

DEFAULT_ADDR = "127.0.0.1:9108"
_REFRESH_S = 0.5
_QUANTILES = (0.5, 0.9, 0.99)


def parse_addr(value: str) -> tuple[str, int]:
    """'HOST:PORT', '[v6]:PORT' or ':PORT' (all interfaces) -> (host, port); port 0 = any free port."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"health address {value!r}: expected HOST:PORT, e.g. {DEFAULT_ADDR}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass(frozen=True)
class Snapshot:
    """What /metrics shows, as of the frame loop's last refresh."""

    frames: int = 0
    infer_sum_ms: float = 0.0
    infer_count: int = 0
    recent_infer_ms: tuple[float, ...] = ()
    fps: float = 0.0
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    counters: tuple[tuple[str, str], ...] = ()  # (name, kind) of the configured counters
    info: dict[str, str] = field(default_factory=dict)


class MetricsHook(Hook):
    """Pipeline hook that keeps the numbers for /metrics and /healthz."""

    def __init__(self, stall_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self.clock = clock
        self.snapshot = Snapshot()
        self.context: RunContext | None = None
        self.started = time.time()
        self.last_frame: float | None = None
        self.state: str | None = None  # set when the loop ends
        self._ring: deque[float] = deque(maxlen=256)
        self._infer_sum = 0.0
        self._infer_count = 0
        self._fps_window: deque[tuple[float, int]] = deque(maxlen=21)
        self._last_refresh = float("-inf")

    def open(self, context: RunContext) -> None:
        self.context = context

    def reconfigured(self, context: RunContext) -> None:
        self.context = context
        self._last_refresh = float("-inf")  # show the new counters at once

    def frame(self, result: FrameResult) -> None:
        now = self.clock()
        self.last_frame = now
        if result.infer_ms is not None:
            self._ring.append(result.infer_ms)
            self._infer_sum += result.infer_ms
            self._infer_count += 1
        if result.events or now - self._last_refresh >= _REFRESH_S:
            self._refresh(result.frames, now)

    def _refresh(self, frames: int, now: float) -> None:
        context = self.context
        if context is None:
            return
        self._last_refresh = now
        self._fps_window.append((now, frames))
        t0, f0 = self._fps_window[0]
        fps = (frames - f0) / (now - t0) if now > t0 else 0.0
        counts = {c: {k: dict(d) for k, d in per.items()} for c, per in context.totals.values.items()}
        kinds = tuple((c.name, c.kind) for c in context.counters)
        info = {"device_id": context.device_id}
        if context.model is not None:
            info = {"runtime": context.model.runtime, "precision": context.model.precision, **info}
        self.snapshot = Snapshot(
            frames, self._infer_sum, self._infer_count, tuple(self._ring), fps, counts, kinds, info
        )

    def close(self, final_state: str = "stopped") -> None:
        self.state = final_state

    def health(self) -> str | None:
        """None when healthy, else why not."""
        if self.state is not None:
            return f"stopped ({self.state})"
        if self.last_frame is None:
            return "starting: no frame yet"
        age = self.clock() - self.last_frame
        if age > self.stall_s:
            return f"frames stalled: no frame for {age:.1f} s"
        problems = self.context.health() if self.context is not None else []
        return "; ".join(problems) if problems else None

    def live(self) -> dict[str, float]:
        """Numbers read at scrape time (thread-safe reads), so they move even while frames stall."""
        values: dict[str, float] = {"start_time_seconds": self.started}
        if self.last_frame is not None:
            values["last_frame_age_seconds"] = self.clock() - self.last_frame
        if self.context is not None:
            values.update(self.context.metrics())
        return values


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# name (without prefix), type, help, key in live() values
_LIVE = [
    (
        "dropped_frames_total",
        "counter",
        "Frames the capture dropped because the loop was busy (live sources).",
        "dropped_frames_total",
    ),
    ("camera_reconnects_total", "counter", "Camera reconnect attempts.", "camera_reconnects_total"),
    (
        "camera_frame_age_seconds",
        "gauge",
        "Seconds since the camera delivered its newest frame.",
        "camera_frame_age_seconds",
    ),
    ("last_frame_age_seconds", "gauge", "Seconds since the frame loop finished a frame.", "last_frame_age_seconds"),
    ("outbox_depth", "gauge", "Count events in the MQTT outbox not yet acknowledged by the broker.", "outbox_depth"),
    ("outbox_dropped_total", "counter", "Events dropped because the outbox was full.", "outbox_dropped"),
    (
        "outbox_on_disk",
        "gauge",
        "0 while the disk fails (full, I/O error) and events are held in memory only.",
        "outbox_on_disk",
    ),
    (
        "outbox_memory_events",
        "gauge",
        "Count events held in memory only (lost by a crash) while the disk fails.",
        "outbox_memory_events",
    ),
    ("mqtt_connected", "gauge", "1 while connected to the MQTT broker.", "mqtt_connected"),
    ("mqtt_reconnects_total", "counter", "MQTT reconnects.", "mqtt_reconnects"),
    ("start_time_seconds", "gauge", "Process start, Unix time.", "start_time_seconds"),
]


def render_metrics(observer: MetricsHook, prefix: str = "edgetally") -> str:
    """Prometheus text exposition format 0.0.4."""
    snap, live, out = observer.snapshot, observer.live(), []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {prefix}_{name} {help_}\n# TYPE {prefix}_{name} {kind}\n")
        out.extend(f"{prefix}_{name}{labels} {value:.6g}\n" for labels, value in samples)

    metric("info", "gauge", "Build and model information.", [(_labels(**snap.info), 1.0)] if snap.info else [])
    metric("up", "gauge", "1 when /healthz would answer 200.", [("", 0.0 if observer.health() else 1.0)])
    metric("frames_total", "counter", "Frames processed by the frame loop.", [("", float(snap.frames))])
    metric("fps", "gauge", "Frames per second over the last ~10 s.", [("", snap.fps)])
    recent = list(snap.recent_infer_ms)
    quantiles = [(_labels(quantile=str(q)), _quantile(recent, q) / 1000.0) for q in _QUANTILES] if recent else []
    # a summary's _sum/_count series are suffixes of its name: passed in the labels slot
    metric(
        "inference_seconds",
        "summary",
        "Model inference time per frame (quantiles over the last 256 frames).",
        quantiles + [("_sum", snap.infer_sum_ms / 1000.0), ("_count", float(snap.infer_count))],
    )
    for name, kind, help_, key in _LIVE:
        if key in live:
            metric(name, kind, help_, [("", live[key])])
    metric(
        "counter_info",
        "gauge",
        "Configured counters (lines and zones).",
        [(_labels(counter=n, kind=k), 1.0) for n, k in snap.counters],
    )
    samples = [
        (_labels(counter=c, **{"class": k}, direction=d), float(n))
        for c, per in sorted(snap.counts.items())
        for k, dirs in sorted(per.items())
        for d, n in sorted(dirs.items())
    ]
    metric("count_total", "counter", "Objects counted, per counter, class and direction.", samples)
    return "".join(out)


class HealthServer(BackgroundServer):
    """Serves /healthz and /metrics from a daemon thread; ``close()`` stops it. At most 32
    connections at a time, 5 s each to send a request (httpserver.BoundedHTTPServer)."""

    def __init__(self, observer: MetricsHook, addr: str = DEFAULT_ADDR) -> None:
        self.observer = observer
        super().__init__(parse_addr(addr), _handler(observer), "health")


def _handler(observer: MetricsHook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # scrapes every 15 s would flood the journal
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                reason = observer.health()
                self._reply(503 if reason else 200, f"{reason or 'ok'}\n", "text/plain; charset=utf-8")
            elif path == "/metrics":
                self._reply(200, render_metrics(observer), "text/plain; version=0.0.4; charset=utf-8")
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

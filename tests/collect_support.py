"""Helpers for `edge collect` tests and benchmarks/fleet.py: simulated devices that speak real MQTT
through the runner's own MqttSink + SQLite outbox, a collector factory, and database queries that
read the same on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from mqtt_support import make_context, make_event

from edgetally.collect.collector import Collector
from edgetally.collect.settings import CollectSettings
from edgetally.hooks import RunContext
from edgetally.sinks.mqtt import MqttSettings, MqttSink


class Device:
    """One simulated board: a real MqttSink with its own outbox; ``emit()`` is what its frame loop does."""

    def __init__(self, name: str, broker_url: str, workdir: Path, sync: str = "normal", **mqtt: Any) -> None:
        self.name = name
        self.ctx: RunContext = make_context(name)
        settings = MqttSettings(
            url=broker_url,
            device_id=name,
            outbox=workdir / f"outbox-{name}.sqlite",
            outbox_sync=sync,
            homeassistant=False,
            reconnect_min_s=1,
            reconnect_max_s=2,
            **mqtt,
        )
        self.sink = MqttSink(settings)
        self.sink.open(self.ctx)
        self.sent = 0
        self._lock = threading.Lock()

    def emit(self, n: int = 1) -> None:
        with self._lock:
            for _ in range(n):
                self.sent += 1
                ev = make_event(self.sent)
                self.sink.event(ev, self.ctx.totals.add(ev))

    @property
    def outbox_depth(self) -> int:
        assert self.sink.outbox is not None
        return self.sink.outbox.depth

    def close(self) -> None:
        self.sink.close()


def collector(broker_url: str, db_url: str, workdir: Path, client_id: str = "collector-1", **kw: Any) -> Collector:
    """A started collector with test-friendly timings (gaps checked often, database retried each second)."""
    options: dict[str, Any] = {"gap_grace_s": 2.0, "gap_check_s": 0.3, "db_retry_max_s": 1.0, "batch_wait_s": 0.05}
    options.update(kw)
    settings = CollectSettings(
        mqtt=MqttSettings(url=broker_url, homeassistant=False, reconnect_min_s=1, reconnect_max_s=2),
        db_url=db_url,
        client_id=client_id,
        spool=workdir / f"spool-{client_id}.sqlite",
        **options,
    )
    return Collector(settings).start()


def query(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one read-only query on either database."""
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url[len("sqlite:///") :]) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


def event_summary(db_url: str) -> dict[str, tuple[int, int, int, int]]:
    """device -> (rows, distinct seqs, min seq, max seq)."""
    rows = query(db_url, "SELECT device_id, count(*), count(DISTINCT seq), min(seq), max(seq) FROM events GROUP BY 1")
    return {d: (int(n), int(u), int(lo), int(hi)) for d, n, u, lo, hi in rows}


def wait_stored(collectors: list[Collector], n: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(c.metrics.total("stored_total", "events") for c in collectors) >= n:
            return True
        time.sleep(0.05)
    return False

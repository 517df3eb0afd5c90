"""`edge collect`: every device's counts from an MQTT broker into PostgreSQL or SQLite, exactly once."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from edgetally.errors import ConfigError

log = logging.getLogger(__name__)


@click.command("collect")
@click.option(
    "--mqtt",
    "mqtt_url",
    default="mqtt://localhost:1883",
    show_default=True,
    metavar="URL",
    help="Broker (or the cluster's load balancer): mqtt://[user@]host[:port] or mqtts://.",
)
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="sqlite:///relative.db, sqlite:////absolute.db or postgresql://user@host:5432/dbname "
    "(password: ~/.pgpass or $PGPASSFILE). Default: sqlite in $STATE_DIRECTORY or ~/.local/state/edgetally.",
)
@click.option("--prefix", default="edgetally", show_default=True, help="Topic prefix the devices publish under.")
@click.option(
    "--share",
    "share_group",
    metavar="GROUP",
    help="Join the MQTT 5 shared subscription $share/GROUP/...: collectors in one group split the events. "
    "Default: a plain subscription (one collector; on mosquitto 2.0 the only kind that survives a "
    "broker restart while the collector is away, see docs/collect.md).",
)
@click.option(
    "--client-id",
    metavar="ID",
    help="MQTT client id; keep it across restarts (the broker queues for it). Default edgetally-collect-<hostname>.",
)
@click.option(
    "--mqtt-password-file", type=click.Path(path_type=Path, dir_okay=False), help="File with the MQTT password."
)
@click.option("--mqtt-tls-ca", type=click.Path(path_type=Path, dir_okay=False), help="CA certificate for mqtts://.")
@click.option(
    "--spool",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Local spool (SQLite) used while the database is away. Default: beside the default database.",
)
@click.option(
    "--spool-max",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="Messages the spool holds; when full the collector stops acknowledging and the broker keeps the rest.",
)
@click.option(
    "--batch",
    "batch_max",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Most messages per database transaction.",
)
@click.option(
    "--batch-wait",
    type=click.FloatRange(0.001, 10),
    default=0.05,
    show_default=True,
    metavar="SECONDS",
    help="How long a batch waits for more messages before it is written (latency vs transactions/s).",
)
@click.option(
    "--gap-grace",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a hole in a device's seq may stay open before it is reported as a gap.",
)
@click.option(
    "--session-expiry",
    type=click.IntRange(0, 2**32 - 1),
    default=7 * 86400,
    show_default=True,
    metavar="SECONDS",
    help="How long the broker keeps queueing for this collector while it is away.",
)
@click.option(
    "--metrics",
    "metrics_addr",
    default="127.0.0.1:9109",
    show_default=True,
    metavar="HOST:PORT",
    help="Serve /metrics (Prometheus) and /healthz here; 'off' to disable.",
)
def collect_command(
    mqtt_url: str,
    db_url: str | None,
    prefix: str,
    share_group: str | None,
    client_id: str | None,
    mqtt_password_file: Path | None,
    mqtt_tls_ca: Path | None,
    spool: Path | None,
    spool_max: int,
    batch_max: int,
    batch_wait: float,
    gap_grace: float,
    session_expiry: int,
    metrics_addr: str,
) -> None:
    """Store every device's events, interval counts and state in a database, exactly once.

    \b
    Examples:
      edge collect --mqtt mqtt://broker.lan --db sqlite:///counts.db
      edge collect --mqtt mqtts://collector@broker.city --db postgresql://edgetally@db.city/counts
    Run several with the same --share GROUP (and different --client-id) to split a fleet's load.
    Tables, views and queries: docs/collect.md.
    """
    from edgetally.collect.collector import Collector

    settings = _settings(
        mqtt={
            "url": mqtt_url,
            "prefix": prefix,
            "password_file": mqtt_password_file,
            "tls_ca": mqtt_tls_ca,
            "homeassistant": False,
        },
        db_url=db_url,
        share_group=share_group,
        client_id=client_id,
        spool=spool,
        spool_max_messages=spool_max,
        batch_max=batch_max,
        batch_wait_s=batch_wait,
        gap_grace_s=gap_grace,
        session_expiry_s=session_expiry,
    )
    collector = Collector(settings)
    server = _metrics_server(collector, metrics_addr)  # a bad address fails before anything starts
    try:
        collector.start()
        _serve(collector)
    finally:
        collector.stop()
        if server is not None:
            server.close()


def _settings(**values: Any) -> Any:
    from pydantic import ValidationError

    from edgetally.collect.settings import CollectSettings

    try:
        return CollectSettings.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid collect settings:\n  " + "\n  ".join(lines)) from None


def _metrics_server(collector: Any, addr: str) -> Any:
    if addr.strip().lower() == "off":
        return None
    from edgetally.collect.metrics import MetricsServer

    return MetricsServer(collector.metrics, collector.health, addr).start()


def _serve(collector: Any) -> None:
    """Until SIGINT/SIGTERM; tells systemd READY, pings its watchdog while the writer lives."""
    from edgetally.service.sdnotify import Notify, watchdog_interval

    done = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: done.set())
    notify, watchdog = Notify(), watchdog_interval()
    notify.send("READY=1")
    tick = min(1.0, watchdog or 1.0)
    while not done.wait(tick):
        problem = collector.health()
        if watchdog and collector.writer_alive:
            notify.send("WATCHDOG=1")
        m = collector.metrics
        notify.send(
            f"STATUS={problem or 'ok'}; {m.total('stored_total', 'events'):.0f} events, "
            f"spool {collector.spool.depth}, gaps {m.total('seq_gaps_total'):.0f}"
        )
    log.info("collect: stopping")
    notify.send("STOPPING=1")

"""`edge dashboard`: a live local web page of every device on an MQTT broker."""

from __future__ import annotations

import time

import click

from edgetally.dashboard.server import Dashboard


@click.command("dashboard")
@click.option("--mqtt", "mqtt_url", default="mqtt://localhost:1883", show_default=True, metavar="URL",
              help="Broker to read: mqtt://[user[:password]@]host[:port].")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="HTTP port (0 = any free).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: the whole LAN).")
@click.option("--prefix", default="edgetally", show_default=True, help="Topic prefix the devices publish under.")
@click.option("--read-only", is_flag=True, help="Show the line editor but never send a configuration change.")
def dashboard_command(mqtt_url: str, port: int, host: str, prefix: str, read_only: bool) -> None:
    """Serve a live page of every device on the broker: availability, counts, chart, fps, snapshot;
    per device its interval history, OD matrix and a line/zone editor (saving sends cmd/config: who may
    is up to the broker's ACL, see docs/intervals.md)."""
    board = Dashboard(mqtt_url, port, host, prefix, editable=not read_only).start()
    click.echo(f"dashboard: {board.url}  (MQTT {board.broker.host}:{board.broker.port}, {prefix}/+/#; Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()

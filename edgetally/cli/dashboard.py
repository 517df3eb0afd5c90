"""`edge dashboard`: a live local web page of every device on an MQTT broker."""

from __future__ import annotations

import click

from edgetally.cli.serving import wait_until_interrupted
from edgetally.dashboard.server import Dashboard


@click.command("dashboard")
@click.option("--mqtt", "mqtt_url", default="mqtt://localhost:1883", show_default=True, metavar="URL",
              help="Broker to read: mqtt://[user[:password]@]host[:port].")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="HTTP port (0 = any free).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: the whole LAN).")
@click.option("--prefix", default="edgetally", show_default=True, help="Topic prefix the devices publish under.")
def dashboard_command(mqtt_url: str, port: int, host: str, prefix: str) -> None:
    """Serve a live page of every device on the broker: availability, counts, chart, fps, snapshot."""
    board = Dashboard(mqtt_url, port, host, prefix).start()
    click.echo(f"dashboard: {board.url}  (MQTT {board.broker.host}:{board.broker.port}, {prefix}/+/#; Ctrl-C to stop)")
    try:
        wait_until_interrupted()
    finally:
        board.stop()

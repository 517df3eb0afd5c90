"""`edge dashboard`: a live local web page of every device on an MQTT broker."""

from __future__ import annotations

from pathlib import Path

import click

from edgetally.cli.serving import wait_until_interrupted
from edgetally.dashboard.server import Dashboard
from edgetally.dashboard.state import MAX_DEVICES
from edgetally.sinks.mqtt_settings import read_secret


@click.command("dashboard")
@click.option(
    "--mqtt",
    "mqtt_url",
    default="mqtt://localhost:1883",
    show_default=True,
    metavar="URL",
    help="Broker to read: mqtt://[user@]host[:port] or mqtts://... (a password here shows in `ps`: "
    "use --password-file).",
)
@click.option("--username", help="Broker user (overrides the URL's).")
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="EDGE_DASHBOARD_PASSWORD_FILE",
    help="File holding the broker password (trailing newline ignored), like the runner's mqtt.password_file.",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="HTTP port (0 = any free)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: the whole LAN).")
@click.option("--prefix", default="edgetally", show_default=True, help="Topic prefix the devices publish under.")
@click.option(
    "--max-devices",
    type=click.IntRange(1, 100_000),
    default=MAX_DEVICES,
    show_default=True,
    help="Devices shown at most; messages from more are refused (a flood of fake names stays bounded).",
)
@click.option("--read-only", is_flag=True, help="Show the line editor but never send a configuration change.")
def dashboard_command(
    mqtt_url: str,
    username: str | None,
    password_file: Path | None,
    port: int,
    host: str,
    prefix: str,
    max_devices: int,
    read_only: bool,
) -> None:
    """Serve a live page of every device on the broker: availability, counts, chart, fps, snapshot;
    per device its interval history, OD matrix and a line/zone editor (saving sends cmd/config: who may
    is up to the broker's ACL, see docs/intervals.md)."""
    password = read_secret(password_file, "--password-file") if password_file else None
    board = Dashboard(
        mqtt_url,
        port,
        host,
        prefix,
        editable=not read_only,
        username=username,
        password=password,
        max_devices=max_devices,
    ).start()
    click.echo(f"dashboard: {board.url}  (MQTT {board.broker.host}:{board.broker.port}, {prefix}/+/#; Ctrl-C to stop)")
    try:
        wait_until_interrupted()
    finally:
        board.stop()

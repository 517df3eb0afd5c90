"""`edge broker`: an embedded MQTT broker for demos and tests (production uses mosquitto)."""

from __future__ import annotations

import click

from edgetally.cli.serving import wait_until_interrupted
from edgetally.sinks.broker import run_embedded_broker


@click.command("broker")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: the whole LAN).")
@click.option("--port", default=1883, show_default=True, type=click.IntRange(1, 65535))
def broker_command(host: str, port: int) -> None:
    """Run an embedded MQTT broker (amqtt) for demos; use mosquitto in production. Ctrl-C or SIGTERM stops it."""
    handle = run_embedded_broker(host, port)
    click.echo(f"MQTT broker listening on {handle.url} (Ctrl-C to stop)")
    try:
        wait_until_interrupted()
    finally:
        handle.stop()

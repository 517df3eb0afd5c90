"""`edge broker`: an embedded MQTT broker for demos and tests (production uses mosquitto)."""

from __future__ import annotations

import threading

import click

from edgetally.sinks.broker import run_embedded_broker


@click.command("broker")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=1883, show_default=True, type=click.IntRange(1, 65535))
def broker_command(host: str, port: int) -> None:
    """Run an embedded MQTT broker (amqtt) for demos; use mosquitto in production."""
    import signal

    handle = run_embedded_broker(host, port)
    click.echo(f"MQTT broker listening on {handle.url} (Ctrl-C to stop)")
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()

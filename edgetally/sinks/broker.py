"""An embedded MQTT broker (amqtt, in-process, on a thread) so the demo needs no external service.

For demos and tests only: production uses mosquitto (persistence, auth, bridges, proven at
scale). amqtt is an optional extra: ``pip install 'edgetally[broker]'``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from edgetally.errors import RuntimeLoadError

log = logging.getLogger(__name__)


@dataclass
class BrokerHandle:
    """A running embedded broker. ``stop()`` shuts it down and joins its thread (idempotent)."""

    host: str
    port: int
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _broker: Any = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._broker is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(timeout)
            except Exception as exc:  # shutting down: report, never raise from cleanup
                log.warning("embedded broker: shutdown error: %s", exc)
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


def _broker_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # No $SYS publisher and no packet logger: quiet, and nothing but what the demo needs.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _quiet_amqtt() -> None:
    """amqtt logs every client session and every state-machine step (the ``transitions`` package) at
    INFO, a line per client event. Keep their warnings; ``edge -vv`` (DEBUG) shows everything."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run_embedded_broker(host: str = "127.0.0.1", port: int = 1883, timeout: float = 10.0) -> BrokerHandle:
    """Start amqtt on ``host:port`` in its own asyncio loop on a daemon thread; return when it listens."""
    _quiet_amqtt()
    try:
        from amqtt.broker import Broker
    except ImportError:
        raise RuntimeLoadError(
            "the embedded broker needs the 'broker' extra: pip install 'edgetally[broker]'"
        ) from None
    loop = asyncio.new_event_loop()
    started = threading.Event()
    error: list[BaseException] = []
    handle = BrokerHandle(host, port, loop, threading.Thread(target=loop.run_forever, name="amqtt", daemon=True))

    async def _start() -> None:
        try:
            handle._broker = Broker(_broker_config(host, port), loop=loop)
            await handle._broker.start()
        except BaseException as exc:  # surfaced to the caller below
            error.append(exc)
        finally:
            started.set()

    handle._thread.start()
    asyncio.run_coroutine_threadsafe(_start(), loop)
    if not started.wait(timeout) or error:
        handle.stop()
        why = error[0] if error else f"no answer in {timeout:.0f} s"
        raise RuntimeLoadError(f"embedded MQTT broker could not start on {host}:{port}: {why}")
    log.info("embedded MQTT broker (amqtt) listening on %s:%d", host, port)
    return handle

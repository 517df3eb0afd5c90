"""Liveness of the parts that run beside the frame loop (sink threads), shared by the watchdog and
/healthz: a frame loop that runs while the MQTT publisher thread is dead must not look healthy."""

from __future__ import annotations

import threading
from collections.abc import Iterable


def sink_alive(sink: object) -> bool:
    """True unless the sink says, or shows, that its worker is gone.

    A sink may expose ``alive`` (bool or callable). Otherwise a worker thread in ``_thread``
    (MqttSink's publisher) counts: started and dead means the publisher crashed. Sinks without a
    worker (JSONL) are always alive.
    """
    alive = getattr(sink, "alive", None)
    if callable(alive):
        return bool(alive())
    if isinstance(alive, bool):
        return alive
    thread = getattr(sink, "_thread", None)
    if isinstance(thread, threading.Thread) and thread.ident is not None:
        return thread.is_alive()
    return True


def sink_problems(sinks: Iterable[object]) -> list[str]:
    """One reason per dead sink, e.g. ``['MqttSink worker stopped']``; empty when all are alive."""
    return [f"{type(s).__name__} worker stopped" for s in sinks if not sink_alive(s)]


def outbox_stats(sinks: Iterable[object]) -> dict[str, float]:
    """Outbox depth/dropped/on-disk and broker connection of the first sink that has an outbox (MQTT)."""
    for sink in sinks:
        outbox = getattr(sink, "outbox", None)
        if outbox is None or not hasattr(outbox, "depth"):
            continue
        stats = {"outbox_depth": float(outbox.depth), "outbox_dropped": float(getattr(outbox, "dropped", 0))}
        if hasattr(outbox, "on_disk"):  # 0 while the disk fails and events are held in memory
            stats["outbox_on_disk"] = 1.0 if outbox.on_disk else 0.0
            stats["outbox_memory_events"] = float(outbox.memory_depth)
        connected = getattr(sink, "connected", None)
        if isinstance(connected, bool):
            stats["mqtt_connected"] = 1.0 if connected else 0.0
        stats["mqtt_reconnects"] = float(getattr(sink, "reconnects", 0))
        return stats
    return {}

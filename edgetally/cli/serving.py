"""Stopping long-running commands (`edge demo`, `edge dashboard`, `edge broker`) on Ctrl-C or SIGTERM.

Not a subcommand: the helpers those commands share. SIGTERM is what `kill`, systemd and Docker send;
by default it ends Python at once, skipping every ``finally`` (broker, dashboard and outbox would
not shut down cleanly). Here it raises KeyboardInterrupt in the main thread, exactly like Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only; restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_until_interrupted() -> None:
    """Block until Ctrl-C or SIGTERM; return normally (a requested stop is not an error)."""
    with sigterm_as_interrupt():
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass

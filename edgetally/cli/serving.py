"""Stopping long-running commands (`edge demo`, `edge dashboard`, `edge broker`) on Ctrl-C or SIGTERM.

Not a subcommand: the helpers those commands share. SIGTERM is what `kill`, systemd and Docker send;
by default it ends Python at once, skipping every ``finally`` (broker, dashboard and outbox would
not shut down cleanly). Here it raises KeyboardInterrupt in the main thread, exactly like Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise KeyboardInterrupt (main thread only; restored
    afterwards). SIGINT too: a process started in the background by a script inherits SIGINT
    *ignored*, and "Ctrl-C (or SIGTERM) to stop" must hold for `kill -INT` there as well."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until_interrupted(announce: str | None = None) -> None:
    """Block until Ctrl-C or SIGTERM; return normally (a requested stop is not an error).
    ``announce`` is printed (stderr) once the signals are handled: a stop sent on seeing it works."""
    with sigterm_as_interrupt():
        try:
            if announce is not None:
                print(announce, file=sys.stderr, flush=True)
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass

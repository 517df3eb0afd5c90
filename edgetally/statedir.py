"""Where the device keeps what must survive a restart (the MQTT outbox, the interval history)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """systemd's ``$STATE_DIRECTORY`` (first entry), else ``~/.local/state/edgetally``."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else Path.home() / ".local" / "state" / "edgetally"

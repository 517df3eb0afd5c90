"""Fixed, wall-clock-aligned bins: parsing bin lengths and placing instants in bins.

A bin length must divide an hour, so every bin starts at a round local time (15 min bins start at
:00, :15, :30 and :45) and a report can always merge finer bins into coarser ones. Bins are aligned
to the *local* clock: in a time zone offset by 30 or 45 minutes from UTC an hourly bin still starts
on the local hour. Instants are epoch seconds (UTC); a bin is named by its start.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

HOUR_S = 3600
MIN_BIN_S = 10  # shorter bins flood the broker and the history for no use (tests and demos use 10-60 s)
DEFAULT_BIN = "15m"
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_BIN = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h)?\s*$")


def parse_bin(value: str | int) -> int:
    """``"15m"``, ``"1h"``, ``"30s"``, ``15`` (minutes) -> seconds. Raises ValueError for a length that
    is unreadable, shorter than 10 s, or does not divide an hour (7 min bins would start at a
    different minute every hour: no two hours' bins compare)."""
    match = None if isinstance(value, bool) else _BIN.match(str(value))
    if match is None:
        raise ValueError(f"bin length: expected e.g. 15m, 1h or 30s, got {value!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "m"]
    if seconds < MIN_BIN_S:
        raise ValueError(f"bin length {value!r}: at least {MIN_BIN_S} s")
    if HOUR_S % seconds:
        raise ValueError(
            f"bin length {value!r} does not divide an hour: use one of 1m, 2m, 3m, 4m, 5m, 6m, 10m, 12m, 15m, 20m, "
            "30m, 60m (bins must start at the same minutes every hour)"
        )
    return seconds


def format_bin(seconds: int) -> str:
    """900 -> ``"15m"``; 3600 -> ``"60m"``; 30 -> ``"30s"``."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def utc_offset(t: float) -> int:
    """The local clock's offset from UTC at instant ``t``, seconds (DST included)."""
    return int(time.localtime(t).tm_gmtoff)


def bin_start(t: float, bin_s: int) -> int:
    """Start (epoch s) of the local-clock-aligned bin holding instant ``t``."""
    off = utc_offset(t)
    return (int(t) + off) // bin_s * bin_s - off


def bin_starts(first: int, end: int, bin_s: int) -> list[int]:
    """Bin starts from ``first`` (a bin start) up to, not including, ``end``."""
    return list(range(first, end, bin_s)) if end > first else []


def iso(t: float) -> str:
    """Local time with its offset, to the second: ``2026-05-04T08:15:00+02:00``."""
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def parse_time(value: str, now: float | None = None) -> float:
    """``2026-05-04``, ``2026-05-04T08:15`` (local time unless it carries an offset), ``today``,
    ``yesterday``, ``now`` or ``-24h`` / ``-90m`` (before now) -> epoch seconds."""
    now = time.time() if now is None else now
    text = value.strip()
    if text == "now":
        return now
    if text in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp() - (86400 if text == "yesterday" else 0)
    rel = re.match(r"^-(\d+)\s*(s|m|min|h|d)$", text)
    if rel is not None:
        unit = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[rel.group(2)]
        return now - int(rel.group(1)) * unit
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"time {value!r}: expected 2026-05-04, 2026-05-04T08:15, today, yesterday, now or -24h"
        ) from None
    return moment.timestamp() if moment.tzinfo is not None else moment.astimezone().timestamp()

"""Counter state across a configuration reload.

A reload builds new counter objects from the new settings. A new counter knows no track, so a
track that already crossed looks new to it: the line counter arms it where the track was first
detected (before the crossing) and counts the crossing a second time. ``carry_over`` hands each
new counter the per-track state of the old counter with the same name when its geometry (kind,
points, anchor) is unchanged. Every other new counter starts clean, and takes the tracks alive at
the reload in where they are next seen, without an event: a reload never counts by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from edgetally.counting.line import LineCounter
from edgetally.counting.zone import ZoneCounter

log = logging.getLogger(__name__)


def carry_over(old: Sequence[LineCounter | ZoneCounter], new: Sequence[LineCounter | ZoneCounter]) -> list[str]:
    """Move per-track state from ``old`` to ``new`` counters of the same name and geometry.

    Returns the names of counters in both whose geometry changed: they start with no per-track
    state (a crossing in progress during the reload may be missed, never counted twice). Added
    counters start clean the same way; removed counters' state is dropped. Each case is logged.
    """
    previous = {c.name: c for c in old}
    alive = frozenset().union(*(c.track_ids for c in old))
    reset: list[str] = []
    for counter in new:
        before = previous.pop(counter.name, None)
        if before is not None and type(before) is type(counter) and before.geometry == counter.geometry:
            counter.take_state(before)  # type: ignore[arg-type]
            continue
        counter.start_quiet(alive)
        if before is None:
            log.info("reload: counter %r added", counter.name)
        else:
            reset.append(counter.name)
            log.warning(
                "reload: counter %r changed geometry; it starts clean (%d tracks re-armed where they "
                "are next seen; a crossing in progress may be missed)",
                counter.name,
                len(alive),
            )
    for name in previous:
        log.info("reload: counter %r removed", name)
    return reset

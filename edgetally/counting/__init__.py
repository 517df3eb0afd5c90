"""Line and zone counters: pure geometry on tracker output, numpy only (no cv2)."""

from __future__ import annotations

from collections.abc import Iterable

from edgetally.counting.geometry import ANCHORS, anchor_points
from edgetally.counting.line import LineCounter
from edgetally.counting.movements import MovementCounter, movement_name, split_movement
from edgetally.counting.reload import carry_over
from edgetally.counting.zone import ZoneCounter

Counter = LineCounter | ZoneCounter


def counter_state_size(counters: Iterable[Counter]) -> int:
    """Per-track states held by all counters together (bounded-memory checks)."""
    return sum(c.num_tracked for c in counters)


__all__ = [
    "ANCHORS",
    "Counter",
    "LineCounter",
    "MovementCounter",
    "ZoneCounter",
    "anchor_points",
    "carry_over",
    "counter_state_size",
    "movement_name",
    "split_movement",
]

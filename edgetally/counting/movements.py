"""Turning movements (origin -> destination) at a junction, from the approach counters' events.

A junction is declared by naming several lines or zones as its approaches (one per arm). Every
track's *first* approach event is its origin and its *last* its destination; the movement is
decided when the track ends (unseen for ``forget_after_s``, or the end of the stream), because only
then is its last approach known. So:

- a track that touched two or more approach events gives ``origin -> destination``; the same arm
  twice is a U-turn (``north -> north``);
- a track that touched one approach only is *unfinished* and still reported, never dropped: it
  entered and never left (``north -> ?``, e.g. it parked, or the stream ended), or, when that one
  event was a line crossing against the junction's entry direction, it left without being seen
  entering (``? -> north``, e.g. it was already inside when counting started);
- touches are line crossings (either direction) and zone entries (``exited`` adds nothing: the
  next approach a track enters is where it went).

Movement events are ordinary ``CountEvent``s: ``counter`` = the junction, ``kind`` = "movement",
``direction`` = ``"north->east"`` (``UNKNOWN`` = "?" for the open end), stamped with the frame and
time of the destination event (of the origin event when unfinished). Pure Python, no cv2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edgetally.structures import CountEvent

UNKNOWN = "?"
SEPARATOR = "->"


def movement_name(origin: str | None, destination: str | None) -> str:
    """("north", "east") -> "north->east"; a missing end is "?"."""
    return f"{origin or UNKNOWN}{SEPARATOR}{destination or UNKNOWN}"


def split_movement(direction: str) -> tuple[str | None, str | None]:
    """ "north->east" -> ("north", "east"); "north->?" -> ("north", None)."""
    origin, sep, destination = direction.partition(SEPARATOR)
    if not sep:
        raise ValueError(f"movement: expected ORIGIN->DESTINATION, got {direction!r}")
    return (None if origin == UNKNOWN else origin), (None if destination == UNKNOWN else destination)


@dataclass(slots=True)
class _Touch:
    approach: str
    arriving: bool
    frame_index: int
    timestamp: float


@dataclass(slots=True)
class _Trip:
    first: _Touch
    last: _Touch
    touches: int
    class_name: str
    score: float
    last_seen: float


class MovementCounter:
    """Origin -> destination per track over one junction's approaches."""

    kind = "movement"

    def __init__(self, name: str, approaches: Sequence[str], entry: str = "in", forget_after_s: float = 3.0) -> None:
        if len(approaches) < 2 or len(set(approaches)) != len(approaches):
            raise ValueError(f"movement {name!r}: expected >= 2 distinct approaches, got {list(approaches)}")
        if entry not in ("in", "out"):
            raise ValueError(f"movement {name!r}: entry must be 'in' or 'out', got {entry!r}")
        if forget_after_s < 0:
            raise ValueError(f"movement {name!r}: forget_after_s must be >= 0")
        self.name = name
        self.approaches = tuple(approaches)
        self.entry = entry
        self.forget_after_s = float(forget_after_s)
        self._trips: dict[int, _Trip] = {}

    @property
    def num_tracked(self) -> int:
        return len(self._trips)

    def movements(self) -> list[str]:
        """Every movement this junction can report: each ordered pair (U-turns included) and the
        unfinished ones, in a stable order."""
        pairs = [movement_name(o, d) for o in self.approaches for d in self.approaches]
        return (
            pairs
            + [movement_name(a, None) for a in self.approaches]
            + [movement_name(None, a) for a in self.approaches]
        )

    def observe(self, events: Iterable[CountEvent]) -> None:
        """Take the approach events of one frame (other counters' events are ignored)."""
        for ev in events:
            if ev.counter not in self.approaches or ev.kind == "movement" or ev.direction == "exited":
                continue
            touch = _Touch(ev.counter, ev.kind == "zone" or ev.direction == self.entry, ev.frame_index, ev.timestamp)
            trip = self._trips.get(ev.track_id)
            if trip is None:
                self._trips[ev.track_id] = _Trip(touch, touch, 1, ev.class_name, ev.score, ev.timestamp)
                continue
            trip.last, trip.touches = touch, trip.touches + 1
            trip.class_name, trip.score, trip.last_seen = ev.class_name, ev.score, max(trip.last_seen, ev.timestamp)

    def update(self, events: Iterable[CountEvent], track_ids: Iterable[int], timestamp: float) -> list[CountEvent]:
        """One frame: its approach events, the ids of the tracks visible now; returns the movements
        of tracks that ended (unseen for longer than ``forget_after_s``)."""
        self.observe(events)
        if not self._trips:  # the usual frame: nobody between two approaches
            return []
        trips = self._trips
        for tid in track_ids:
            trip = trips.get(tid)
            if trip is not None:
                trip.last_seen = timestamp
        gone = [tid for tid, trip in self._trips.items() if timestamp - trip.last_seen > self.forget_after_s]
        return [self._resolve(tid, self._trips.pop(tid)) for tid in gone]

    def flush(self) -> list[CountEvent]:
        """End of stream: every open trip is decided now (one touch: unfinished)."""
        out = [self._resolve(tid, trip) for tid, trip in self._trips.items()]
        self._trips.clear()
        return out

    def _resolve(self, track_id: int, trip: _Trip) -> CountEvent:
        if trip.touches >= 2:
            direction, at = movement_name(trip.first.approach, trip.last.approach), trip.last
        elif trip.first.arriving:
            direction, at = movement_name(trip.first.approach, None), trip.first
        else:
            direction, at = movement_name(None, trip.first.approach), trip.first
        return CountEvent(
            self.name,
            "movement",
            trip.class_name,
            direction,  # type: ignore[arg-type]
            track_id,
            at.frame_index,
            at.timestamp,
            trip.score,
        )

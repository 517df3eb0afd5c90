"""Tracks a counter must adopt silently: the ones already alive when it was rebuilt by a reload."""

from __future__ import annotations

from collections.abc import Iterable


class QuietTracks:
    """Ids known before a counter (re)started. On first sight such a track is taken in where it
    is, without an event and without looking at where it was born: the crossing or entry that
    brought it there happened before the reload and was counted then. The set empties as the
    tracks show up, and is dropped ``horizon_s`` after the first update (a track unseen that long
    is gone), so it never outlives the tracks it names."""

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self._ids: set[int] = set()
        self._until: float | None = None

    def add(self, ids: Iterable[int]) -> None:
        self._ids.update(int(i) for i in ids)
        self._until = None

    def take(self, track_id: int) -> bool:
        """True (once) when ``track_id`` must be adopted silently."""
        if not self._ids or track_id not in self._ids:
            return False
        self._ids.discard(track_id)
        return True

    def tick(self, timestamp: float) -> None:
        """Call once per update: starts the horizon, and forgets the rest after it."""
        if not self._ids:
            return
        if self._until is None:
            self._until = timestamp + self.horizon_s
        elif timestamp > self._until:
            self._ids.clear()

    def __len__(self) -> int:
        return len(self._ids)

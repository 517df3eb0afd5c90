"""Interval accounting on top of the history store: which bin a count goes to, how long each bin was
really observed, zone occupancy over time, and when a bin closes. Every method takes ``now`` (epoch
seconds), so tests drive it with any clock; no threads, no MQTT (sinks/intervals.py adds those).

Observed time: the wall-clock time between consecutive frames, split at bin boundaries, unless the
gap is longer than ``gap_s`` (the camera was out: that time was not observed). Occupancy per zone and
class follows the zone counter's events (entered +1, exited -1: its contract keeps entered - exited
== occupancy), integrated over observed time; a bin's peak starts at the occupancy it opened with.

Closing: a frame closes every bin before its own (it has just accounted for their tail); without
frames (a camera outage) ``tick()`` closes a bin ``gap_s`` after its end, so an outage still yields
bins on time, with 0 s observed. A restart continues a bin that has not ended; bins that ended
while the runner was down are closed on ``start()``; bins it never ran in are not invented here
(reports show them as 0 s observed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from edgetally.history.bins import bin_start, bin_starts
from edgetally.history.rows import IntervalRow, rows_for_bin
from edgetally.history.store import HistoryStore, KeyInfo, Occupancy

log = logging.getLogger(__name__)

_FLUSH_S = 5.0  # observed time alone is persisted at most this often (a count persists it at once)
_MAX_RUNNING_GAP_BINS = 10_000  # a clock jump of years must not create millions of empty bins


class IntervalRecorder:
    def __init__(self, store: HistoryStore, bin_s: int, gap_s: float) -> None:
        self.store, self.bin_s, self.gap_s = store, int(bin_s), float(gap_s)
        self.closed_until = 0
        self._observed: dict[tuple[int, int], tuple[int, float]] = {}
        self._occ_acc: dict[tuple[int, int, str, str], Occupancy] = {}
        self._occupancy: dict[tuple[str, str], int] = {}
        self._last_frame: float | None = None
        self._last_flush = 0.0

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, now: float) -> list[list[IntervalRow]]:
        """Resume from the store: close what ended while down, continue the current bin."""
        stored = self.store.meta("closed_until")
        current = bin_start(now, self.bin_s)
        same_bins = self.store.meta("bin_s") in (None, str(self.bin_s))
        self.closed_until = int(stored) if stored is not None and same_bins else current
        closed = []
        for b in self.store.bins(None, None):
            if b.closed:
                continue
            if b.bin_s != self.bin_s or b.start + b.bin_s <= now:
                closed.append(self._close(b.start, b.bin_s))
            else:
                self._observed[(b.start, b.bin_s)] = (b.frames, b.observed_s)
        for (s, b_s), per in self.store.occupancy(self.closed_until, None).items():
            for (zone, cls), occ in per.items():
                if (s, b_s) in self._observed:
                    self._occ_acc[(s, b_s, zone, cls)] = occ
        self.closed_until = max(self.closed_until, current) if same_bins else current
        self.store.set_meta("closed_until", self.closed_until)
        self.store.set_meta("bin_s", self.bin_s)
        return closed

    def flush(self) -> None:
        self.store.flush_observed(self._observed, self._open_occ())

    # -- input --------------------------------------------------------------------------------------
    def count(self, key: KeyInfo, now: float) -> int:
        """Record one count now; return the bin it went to (the first open bin if the clock went back)."""
        start = max(bin_start(now, self.bin_s), self.closed_until)
        if key.kind == "zone":
            self._occupancy_change(key, start)
        self.store.add_count(start, self.bin_s, key, self._observed, self._open_occ())
        return start

    def frame(self, now: float) -> list[list[IntervalRow]]:
        """One processed frame at ``now``: observed time since the previous frame, then close the bins
        before this one. Returns the rows of each bin closed."""
        if self._last_frame is not None:
            self._observe(self._last_frame, now)
        current = bin_start(now, self.bin_s)
        start = max(current, self.closed_until)
        frames, seconds = self._observed.get((start, self.bin_s), (0, 0.0))
        self._observed[(start, self.bin_s)] = (frames + 1, seconds)
        self._last_frame = max(now, self._last_frame or now)
        closed = self._close_before(current)
        if now - self._last_flush >= _FLUSH_S:
            self._last_flush = now
            self.flush()
        return closed

    def tick(self, now: float) -> list[list[IntervalRow]]:
        """No frame needed: close bins that ended more than ``gap_s`` ago (camera outage)."""
        return self._close_before(bin_start(now - self.gap_s, self.bin_s))

    def stream_gap(self) -> None:
        """The next frame does not continue the previous one (a restart of the source): no observed
        time between them."""
        self._last_frame = None

    def reset_occupancy(self, zones: Iterable[str] | None = None) -> None:
        """Zones whose counters lost their state (end of stream, reload, a zone removed)."""
        drop = None if zones is None else set(zones)
        for key in [k for k in self._occupancy if drop is None or k[0] in drop]:
            del self._occupancy[key]

    def occupancy(self) -> dict[tuple[str, str], int]:
        return {k: n for k, n in self._occupancy.items() if n}

    # -- internals ----------------------------------------------------------------------------------
    def _occupancy_change(self, key: KeyInfo, start: int) -> None:
        k = (key.counter, key.class_name)
        n = self._occupancy.get(k, 0) + (1 if key.direction == "entered" else -1 if key.direction == "exited" else 0)
        self._occupancy[k] = max(n, 0)
        acc = self._occ_acc.setdefault((start, self.bin_s, *k), Occupancy())
        acc.peak = max(acc.peak, self._occupancy[k])

    def _observe(self, a: float, b: float) -> None:
        if b <= a or b - a > self.gap_s:
            return
        t = a
        while t < b:
            s = bin_start(t, self.bin_s)
            seg_end = min(b, s + self.bin_s)
            if s >= self.closed_until:
                frames, seconds = self._observed.get((s, self.bin_s), (0, 0.0))
                self._observed[(s, self.bin_s)] = (frames, seconds + seg_end - t)
                for (zone, cls), n in self._occupancy.items():
                    acc = self._occ_acc.setdefault((s, self.bin_s, zone, cls), Occupancy())
                    acc.occ_s += n * (seg_end - t)
                    acc.peak = max(acc.peak, n)
            t = seg_end

    def _close_before(self, boundary: int) -> list[list[IntervalRow]]:
        if boundary <= self.closed_until:
            return []
        starts = bin_starts(self.closed_until, boundary, self.bin_s)
        if len(starts) > _MAX_RUNNING_GAP_BINS:
            log.warning(
                "intervals: the clock jumped %.0f h forward; closing only the bins with data",
                (boundary - self.closed_until) / 3600,
            )
            starts = sorted({s for s, _ in self._observed if s < boundary})
        closed = [self._close(s, self.bin_s, boundary) for s in starts]
        self.closed_until = boundary
        return closed

    def _close(self, start: int, bin_s: int, closed_until: int | None = None) -> list[IntervalRow]:
        observed = self._observed.pop((start, bin_s), None)
        occ = {(z, c): v for (s, b, z, c), v in self._occ_acc.items() if (s, b) == (start, bin_s)}
        for z, c in occ:
            del self._occ_acc[(start, bin_s, z, c)]
        if observed is not None or occ:
            self.store.flush_observed(
                {(start, bin_s): observed} if observed else {}, {(start, bin_s, z, c): v for (z, c), v in occ.items()}
            )
        self.store.close_bin(start, bin_s, max(closed_until or 0, self.closed_until))
        row = self.store.bin(start, bin_s)
        assert row is not None
        counts = self.store.counts(start, start + 1).get((start, bin_s), {})
        occupancy = self.store.occupancy(start, start + 1).get((start, bin_s), {})
        return rows_for_bin(row, self.store.keys(), counts, occupancy, self.store.device)

    def _open_occ(self) -> dict[tuple[int, int, str, str], Occupancy]:
        return self._occ_acc

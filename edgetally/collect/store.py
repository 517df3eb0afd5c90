"""Where collected records go: the ``Store`` protocol, the rules every database shares, and
``open_store(url)``. SQL lives in ``sqlite_store.py`` and ``postgres_store.py``.

Rules (the same for every database):

- exactly once: ``(device_id, seq)`` is the events' primary key and inserts are ``ON CONFLICT DO
  NOTHING``; a redelivery with the same content is a duplicate (counted, harmless), a different
  event under a stored ``seq`` is refused as ``seq_conflict`` (a device whose outbox was wiped
  starts again at 1: its new events must not vanish silently as "duplicates");
- a ``seq`` that goes backwards is refused (``seq_backwards``): an event numbered below one the
  device already sent but counted *later* (its ``ts`` is more than ``CLOCK_TOLERANCE_S`` after the
  higher-numbered event's). One outbox numbers events in the order it counts them, so this only
  happens when a device's numbering restarted; a late arrival (broker, bridge or shared
  subscription reordering) has an earlier ``ts`` and is stored normally;
- gaps: every device has a watermark ``checked_seq`` (all seqs up to it are stored or listed in
  ``seq_gaps``); a hole above it that is still open ``grace_s`` after the event behind it was
  stored is written to ``seq_gaps`` (and logged and counted by the collector). A hole filled later
  (a late replay) gets ``filled_at``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

from edgetally.collect.messages import EventRecord, IntervalRecord, Record, StatusRecord
from edgetally.errors import ConfigError

CLOCK_TOLERANCE_S = 5.0


class StoreUnavailable(Exception):
    """The database cannot be reached (or went away mid-write): spool and retry later."""


@dataclass
class WriteResult:
    inserted: dict[str, int] = field(default_factory=lambda: {"events": 0, "intervals": 0, "status": 0})
    duplicates: int = 0
    refused: list[tuple[Record, str, str]] = field(default_factory=list)  # (record, reason, detail)
    lags_s: list[float] = field(default_factory=list)  # stored_at - ts of each inserted event

    def merge(self, other: WriteResult) -> WriteResult:
        for kind, n in other.inserted.items():
            self.inserted[kind] += n
        self.duplicates += other.duplicates
        self.refused += other.refused
        self.lags_s += other.lags_s
        return self


@dataclass(frozen=True)
class Gap:
    device_id: str
    first_seq: int
    last_seq: int

    @property
    def size(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass
class GapReport:
    new: list[Gap] = field(default_factory=list)
    filled: list[Gap] = field(default_factory=list)
    open_missing: int = 0  # events still missing over every open gap


class Store(abc.ABC):
    """One database connection, used from one thread (the collector's writer)."""

    description: str

    @abc.abstractmethod
    def open(self) -> None:
        """Connect and create the schema if needed; raise StoreUnavailable when unreachable."""

    @abc.abstractmethod
    def write(self, records: list[Record], now: float) -> WriteResult:
        """Store one batch (each kind in its own transaction); StoreUnavailable if the database went away."""

    @abc.abstractmethod
    def is_data_error(self, exc: Exception) -> bool:
        """True when ``exc`` is the database refusing a value (one record's fault), not a bug or an outage."""

    @abc.abstractmethod
    def check_gaps(self, now: float, grace_s: float) -> GapReport:
        """Advance the per-device watermarks, record new gaps, mark late-filled ones."""

    @abc.abstractmethod
    def close(self) -> None: ...


def open_store(url: str) -> Store:
    """``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` or ``postgresql://...``."""
    text = url.strip()
    if text.startswith("sqlite:///"):
        from edgetally.collect.sqlite_store import SqliteStore

        path = text[len("sqlite:///") :]
        if not path or path.endswith("/"):
            raise ConfigError(f"--db {url!r}: expected sqlite:///path/to/file.db")
        return SqliteStore(Path(path))
    if text.startswith(("postgresql://", "postgres://")):
        from edgetally.collect.postgres_store import PostgresStore

        return PostgresStore(text)
    raise ConfigError(f"--db {url!r}: expected sqlite:///path.db or postgresql://user@host/dbname")


# -- rules shared by the stores (pure functions) ----------------------------------------------------
def split(records: list[Record]) -> tuple[list[EventRecord], list[IntervalRecord], list[StatusRecord]]:
    events = sorted((r for r in records if isinstance(r, EventRecord)), key=lambda e: (e.device_id, e.seq))
    intervals = sorted(
        (r for r in records if isinstance(r, IntervalRecord)),
        key=lambda r: (r.device_id, r.counter, r.class_name, r.direction, r.start),
    )
    statuses = [r for r in records if isinstance(r, StatusRecord)]
    return events, intervals, statuses


def dedupe_batch(events: list[EventRecord]) -> tuple[list[EventRecord], WriteResult]:
    """Drop repeats of one (device, seq) inside a batch (``events`` sorted): a same-content repeat is
    a duplicate, a different one a conflict. Returns the unique events and what was dropped."""
    unique: list[EventRecord] = []
    dropped = WriteResult()
    for ev in events:
        prev = unique[-1] if unique else None
        if prev is None or (prev.device_id, prev.seq) != (ev.device_id, ev.seq):
            unique.append(ev)
        elif same_event(ev, (prev.ts, prev.counter, prev.class_name, prev.direction, prev.track_id, prev.frame)):
            dropped.duplicates += 1
        else:
            dropped.refused.append((ev, "seq_conflict", f"seq {ev.seq} twice in one batch with different events"))
    return unique, dropped


def screen_backwards(
    events: list[EventRecord],
    known: dict[str, tuple[int, float]],
) -> tuple[list[EventRecord], list[tuple[Record, str, str]]]:
    """Refuse events counted after a higher-numbered event of the same device (see module doc).

    ``known``: device -> (max stored seq, its ts). ``events`` sorted by (device, seq); keeps order."""
    keep: list[EventRecord] = []
    refused: list[tuple[Record, str, str]] = []
    floor: dict[str, float] = {}  # device -> earliest ts among the kept events numbered above
    for ev in reversed(events):
        max_seq, max_ts = known.get(ev.device_id, (0, float("inf")))
        limit = floor.get(ev.device_id, float("inf"))
        if ev.seq < max_seq:
            limit = min(limit, max_ts)
        if ev.ts > limit + CLOCK_TOLERANCE_S:
            why = (
                f"seq {ev.seq} counted at {ev.ts:.3f}, after a higher seq counted at {limit:.3f}: numbering restarted?"
            )
            refused.append((ev, "seq_backwards", why))
            continue
        keep.append(ev)
        floor[ev.device_id] = min(limit, ev.ts)
    keep.reverse()
    return keep, refused


@dataclass(frozen=True)
class SeqUpdate:
    device_id: str
    first_seq: int
    max_seq: int
    max_seq_ts: float
    last_event_at: float


def seq_updates(inserted: list[EventRecord]) -> list[SeqUpdate]:
    """Per device (sorted): lowest and highest inserted seq, the ts at the highest, newest receive."""
    lo: dict[str, int] = {}
    hi: dict[str, EventRecord] = {}
    last: dict[str, float] = {}
    for ev in inserted:
        dev = ev.device_id
        if dev not in hi:
            lo[dev], hi[dev], last[dev] = ev.seq, ev, ev.received_at
            continue
        lo[dev] = min(lo[dev], ev.seq)
        if ev.seq > hi[dev].seq:
            hi[dev] = ev
        last[dev] = max(last[dev], ev.received_at)
    return [SeqUpdate(d, lo[d], hi[d].seq, hi[d].ts, last[d]) for d in sorted(hi)]


def unique_intervals(intervals: list[IntervalRecord]) -> list[IntervalRecord]:
    """One record per key (an upsert may touch a row once per statement): the most observed wins."""
    best: dict[tuple[str, str, str, str, float, float], IntervalRecord] = {}
    for rec in intervals:
        key = (rec.device_id, rec.counter, rec.class_name, rec.direction, rec.start, rec.end)
        if key not in best or rec.observed_s > best[key].observed_s:
            best[key] = rec
    return [best[k] for k in sorted(best)]


def latest_status(statuses: list[StatusRecord]) -> list[StatusRecord]:
    """The newest value per (device, field), sorted by device (one lock order for every collector)."""
    last: dict[tuple[str, str], StatusRecord] = {}
    for rec in statuses:
        key = (rec.device_id, rec.field)
        if key not in last or rec.received_at >= last[key].received_at:
            last[key] = rec
    return [last[k] for k in sorted(last)]


def walk_gaps(
    device_id: str,
    watermark: int,
    rows: list[tuple[int, float]],
    now: float,
    grace_s: float,
) -> tuple[int, list[Gap]]:
    """``rows``: (seq, stored_at) above ``watermark``, ascending. Returns the new watermark and the
    holes old enough to report; stops at the first hole that may still fill (younger than grace)."""
    gaps: list[Gap] = []
    for seq, stored_at in rows:
        if seq <= watermark:
            continue
        if seq > watermark + 1:
            if now - stored_at < grace_s:
                break
            gaps.append(Gap(device_id, watermark + 1, seq - 1))
        watermark = seq
    return watermark, gaps


def same_event(ev: EventRecord, stored: tuple[float, str, str, str, int, int]) -> bool:
    """A redelivery carries the same payload; compare what a restarted device would change."""
    ts, counter, cls, direction, track_id, frame = stored
    return (
        abs(ts - ev.ts) < 0.002
        and (counter, cls, direction) == (ev.counter, ev.class_name, ev.direction)
        and (track_id, frame) == (ev.track_id, ev.frame)
    )

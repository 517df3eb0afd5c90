"""SQLite store: the embedded default for one machine (``--db sqlite:///counts.db``).

WAL, ``synchronous=FULL`` (the collector acknowledges messages to the broker only after the
commit: a power cut must not lose what the broker already forgot). Times are epoch seconds.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from edgetally.collect import schema
from edgetally.collect.messages import EventRecord, IntervalRecord, Record
from edgetally.collect.store import (
    Gap,
    GapReport,
    Store,
    StoreUnavailable,
    WriteResult,
    dedupe_batch,
    latest_status,
    same_event,
    screen_backwards,
    seq_updates,
    split,
    unique_intervals,
    walk_gaps,
)
from edgetally.errors import ConfigError

log = logging.getLogger(__name__)

_INSERT_EVENT = """INSERT INTO events (device_id, seq, ts, counter, kind, class, dir, track_id, score, frame,
  src_ts, extra, received_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device_id, seq) DO NOTHING"""
_UPSERT_SEQ = """INSERT INTO devices (device_id, first_seq, max_seq, max_seq_ts, checked_seq, last_event_at)
  VALUES (?, ?, ?, ?, ? - 1, ?)
  ON CONFLICT (device_id) DO UPDATE SET
    first_seq = min(coalesce(devices.first_seq, excluded.first_seq), excluded.first_seq),
    max_seq_ts = CASE WHEN devices.max_seq IS NULL OR excluded.max_seq > devices.max_seq
                      THEN excluded.max_seq_ts ELSE devices.max_seq_ts END,
    max_seq = max(coalesce(devices.max_seq, excluded.max_seq), excluded.max_seq),
    checked_seq = coalesce(devices.checked_seq, excluded.checked_seq),
    last_event_at = max(coalesce(devices.last_event_at, excluded.last_event_at), excluded.last_event_at)"""
_UPSERT_INTERVAL = """INSERT INTO interval_counts (device_id, counter, class, dir, bin_start, bin_end, kind, count,
  observed_s, frames, extra, received_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device_id, counter, class, dir, bin_start, bin_end) DO UPDATE SET
    kind = excluded.kind, count = excluded.count, observed_s = excluded.observed_s, frames = excluded.frames,
    extra = excluded.extra, received_at = excluded.received_at, stored_at = excluded.stored_at
  WHERE excluded.observed_s > interval_counts.observed_s"""
_UPSERT_STATUS = """INSERT INTO devices (device_id, {f}, {f}_at) VALUES (?, ?, ?)
  ON CONFLICT (device_id) DO UPDATE SET {f} = excluded.{f}, {f}_at = excluded.{f}_at
  WHERE devices.{f}_at IS NULL OR excluded.{f}_at >= devices.{f}_at"""


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"sqlite:///{path}"
        self._db: sqlite3.Connection | None = None
        self._opened_once = False

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(schema.SQLITE)
            db.execute(
                "INSERT OR IGNORE INTO edgetally_meta VALUES ('schema_version', ?)", (str(schema.SCHEMA_VERSION),)
            )
        except (OSError, sqlite3.Error) as exc:
            if not self._opened_once:  # a local file that cannot be opened at start is a wrong path, not an outage
                raise ConfigError(f"--db {self.description}: cannot open: {exc}") from None
            raise StoreUnavailable(f"{self.path}: {exc}") from None
        self._db = db
        self._opened_once = True

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def is_data_error(self, exc: Exception) -> bool:
        return isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError))

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreUnavailable("not open")
        return self._db

    def write(self, records: list[Record], now: float) -> WriteResult:
        events, intervals, statuses = split(records)
        result = WriteResult()
        try:
            with _transaction(self._conn()) as db:
                self._write_events(db, events, now, result)
                for rec in unique_intervals(intervals):
                    result.inserted["intervals"] += _execute(db, _UPSERT_INTERVAL, _interval_row(rec, now))
                for st in latest_status(statuses):
                    result.inserted["status"] += _execute(
                        db, _UPSERT_STATUS.format(f=st.field), (st.device_id, st.value, st.received_at)
                    )
        except sqlite3.OperationalError as exc:  # disk full, I/O error, locked for > timeout
            raise StoreUnavailable(str(exc)) from None
        return result

    def _write_events(self, db: sqlite3.Connection, events: list[EventRecord], now: float, result: WriteResult) -> None:
        devices = sorted({e.device_id for e in events})
        known = {}
        for dev in devices:
            row = db.execute("SELECT max_seq, max_seq_ts FROM devices WHERE device_id = ?", (dev,)).fetchone()
            if row and row[0] is not None:
                known[dev] = (int(row[0]), float(row[1]))
        events, dropped = dedupe_batch(events)
        result.merge(dropped)
        events, refused = screen_backwards(events, known)
        result.refused += refused
        inserted = []
        for ev in events:
            if _execute(db, _INSERT_EVENT, _event_row(ev, now)):
                inserted.append(ev)
                result.lags_s.append(now - ev.ts)
                continue
            stored = db.execute(
                "SELECT ts, counter, class, dir, track_id, frame FROM events WHERE device_id = ? AND seq = ?",
                (ev.device_id, ev.seq),
            ).fetchone()
            if same_event(ev, stored):
                result.duplicates += 1
            else:
                result.refused.append((ev, "seq_conflict", f"seq {ev.seq} is already stored with another event"))
        result.inserted["events"] = len(inserted)
        for u in seq_updates(inserted):
            db.execute(_UPSERT_SEQ, (u.device_id, u.first_seq, u.max_seq, u.max_seq_ts, u.first_seq, u.last_event_at))

    def check_gaps(self, now: float, grace_s: float) -> GapReport:
        report = GapReport()
        try:
            with _transaction(self._conn()) as db:
                marks = db.execute(
                    "SELECT device_id, checked_seq FROM devices WHERE checked_seq < max_seq ORDER BY 1"
                ).fetchall()
                for device, mark in marks:
                    rows = db.execute(
                        "SELECT seq, stored_at FROM events WHERE device_id = ? AND seq > ? ORDER BY seq", (device, mark)
                    ).fetchall()
                    new_mark, gaps = walk_gaps(device, int(mark), rows, now, grace_s)
                    for gap in gaps:
                        if _execute(
                            db,
                            "INSERT INTO seq_gaps VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
                            (gap.device_id, gap.first_seq, gap.last_seq, now),
                        ):
                            report.new.append(gap)
                    if new_mark > mark:
                        db.execute(
                            "UPDATE devices SET checked_seq = max(checked_seq, ?) WHERE device_id = ?",
                            (new_mark, device),
                        )
                self._refresh_open_gaps(db, now, report)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from None
        return report

    @staticmethod
    def _refresh_open_gaps(db: sqlite3.Connection, now: float, report: GapReport) -> None:
        rows = db.execute(
            "SELECT device_id, first_seq, last_seq, missing FROM seq_gap_status WHERE filled_at IS NULL"
        ).fetchall()
        for device, first, last, missing in rows:
            if missing == 0:
                db.execute(
                    "UPDATE seq_gaps SET filled_at = ? WHERE device_id = ? AND first_seq = ?", (now, device, first)
                )
                report.filled.append(Gap(device, int(first), int(last)))
            else:
                report.open_missing += int(missing)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:  # some errors (disk I/O) already rolled it back
            self.db.execute("ROLLBACK")


def _execute(db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> int:
    return db.execute(sql, params).rowcount


def _event_row(ev: EventRecord, now: float) -> tuple[object, ...]:
    return (
        ev.device_id,
        ev.seq,
        ev.ts,
        ev.counter,
        ev.kind,
        ev.class_name,
        ev.direction,
        ev.track_id,
        ev.score,
        ev.frame,
        ev.src_ts,
        ev.extra,
        ev.received_at,
        now,
    )


def _interval_row(rec: IntervalRecord, now: float) -> tuple[object, ...]:
    return (
        rec.device_id,
        rec.counter,
        rec.class_name,
        rec.direction,
        rec.start,
        rec.end,
        rec.kind,
        rec.count,
        rec.observed_s,
        rec.frames,
        rec.extra,
        rec.received_at,
        now,
    )

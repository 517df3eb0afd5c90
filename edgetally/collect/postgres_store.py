"""PostgreSQL store (psycopg 3; ``pip install 'edgetally[collect]'``).

Each batch is a handful of statements whatever its size (arrays through ``unnest``). Every
statement touches rows in one order (device, then seq), so collectors sharing a database never
deadlock each other; a deadlock or serialisation failure from elsewhere is retried. The schema
is created under an advisory lock, so several collectors may start at once. Credentials: put
them in ``~/.pgpass`` or ``$PGPASSFILE`` (libpq reads them), not in ``--db``: a URL shows in ``ps``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from edgetally.collect import schema
from edgetally.collect.messages import EventRecord, Record, StatusRecord
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

_LOCK_ID = 0x6564_6765  # pg_advisory_xact_lock key for schema creation ("edge")
_RETRIES = 3
_DEFAULTS = {
    "connect_timeout": "5",
    "application_name": "edge collect",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "20000",
}

# a batch of events is COPYed into a temporary table (fast, whatever the batch size), then moved
_INCOMING = """
CREATE TEMP TABLE IF NOT EXISTS incoming_events (
  device_id text, seq bigint, ts float8, counter text, kind text, class text, dir text, track_id bigint,
  score float4, frame bigint, src_ts float8, extra text, received_at float8) ON COMMIT DELETE ROWS"""
_COPY_EVENTS = "COPY incoming_events FROM STDIN"
_INSERT_EVENTS = """
INSERT INTO events (device_id, seq, ts, counter, kind, class, dir, track_id, score, frame, src_ts, extra,
                    received_at, stored_at)
SELECT device_id, seq, to_timestamp(ts), counter, kind, class, dir, track_id, score, frame, src_ts, extra::jsonb,
       to_timestamp(received_at), to_timestamp(%s)
FROM incoming_events ORDER BY device_id, seq
ON CONFLICT (device_id, seq) DO NOTHING
RETURNING device_id, seq"""
_STORED_EVENTS = """
SELECT e.device_id, e.seq, extract(epoch FROM e.ts)::float8, e.counter, e.class, e.dir, e.track_id, e.frame
FROM events e JOIN unnest(%s::text[], %s::bigint[]) AS k(d, s) ON e.device_id = k.d AND e.seq = k.s"""
_UPSERT_SEQ = """
INSERT INTO devices (device_id, first_seq, max_seq, max_seq_ts, checked_seq, last_event_at)
SELECT d, f, m, to_timestamp(t), f - 1, to_timestamp(l)
FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::float8[], %s::float8[]) AS u(d, f, m, t, l)
ON CONFLICT (device_id) DO UPDATE SET
  first_seq = LEAST(devices.first_seq, excluded.first_seq),
  max_seq_ts = CASE WHEN devices.max_seq IS NULL OR excluded.max_seq > devices.max_seq
                    THEN excluded.max_seq_ts ELSE devices.max_seq_ts END,
  max_seq = GREATEST(devices.max_seq, excluded.max_seq),
  checked_seq = COALESCE(devices.checked_seq, excluded.checked_seq),
  last_event_at = GREATEST(devices.last_event_at, excluded.last_event_at)"""
_UPSERT_INTERVALS = """
INSERT INTO interval_counts (device_id, counter, class, dir, bin_start, bin_end, kind, count, observed_s, frames,
                             extra, received_at, stored_at)
SELECT d, c, cl, di, to_timestamp(bs), to_timestamp(be), k, n, o, f, x::jsonb, to_timestamp(r), to_timestamp(%s)
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::float8[], %s::float8[], %s::text[], %s::bigint[],
            %s::float8[], %s::bigint[], %s::text[], %s::float8[]) AS u(d, c, cl, di, bs, be, k, n, o, f, x, r)
ON CONFLICT (device_id, counter, class, dir, bin_start, bin_end) DO UPDATE SET
  kind = excluded.kind, count = excluded.count, observed_s = excluded.observed_s, frames = excluded.frames,
  extra = excluded.extra, received_at = excluded.received_at, stored_at = excluded.stored_at
WHERE excluded.observed_s > interval_counts.observed_s
RETURNING 1"""
# one row per device carrying whichever of the three fields arrived; a field only moves forward in time
_STATUS_SET = """{f} = CASE WHEN excluded.{f}_at IS NOT NULL AND (devices.{f}_at IS NULL OR excluded.{f}_at >= devices.{f}_at)
                      THEN excluded.{f} ELSE devices.{f} END,
  {f}_at = CASE WHEN excluded.{f}_at IS NOT NULL AND (devices.{f}_at IS NULL OR excluded.{f}_at >= devices.{f}_at)
                      THEN excluded.{f}_at ELSE devices.{f}_at END"""
_UPSERT_STATUS = f"""
INSERT INTO devices (device_id, availability, availability_at, state, state_at, stats, stats_at)
SELECT d, a, to_timestamp(at), s, to_timestamp(st), x::jsonb, to_timestamp(xt)
FROM unnest(%s::text[], %s::text[], %s::float8[], %s::text[], %s::float8[], %s::text[], %s::float8[])
     AS u(d, a, at, s, st, x, xt)
ON CONFLICT (device_id) DO UPDATE SET
  {",".join(_STATUS_SET.format(f=f) for f in ("availability", "state", "stats"))}"""
_GAP_ROWS = """
SELECT e.device_id, d.checked_seq, e.seq, extract(epoch FROM e.stored_at)::float8
FROM devices d JOIN events e ON e.device_id = d.device_id AND e.seq > d.checked_seq
WHERE d.checked_seq < d.max_seq
ORDER BY e.device_id, e.seq"""


class PostgresStore(Store):
    def __init__(self, url: str) -> None:
        self.url = url
        self.description = _redact(url)
        self._conn: Any = None

    def open(self) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            conninfo = make_conninfo("", **{**_DEFAULTS, **conninfo_to_dict(self.url)})
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"--db {self.description}: {exc}") from None
        try:
            conn = psycopg.connect(conninfo)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                conn.execute(schema.POSTGRES)
                conn.execute(
                    "INSERT INTO edgetally_meta VALUES ('schema_version', %s) ON CONFLICT DO NOTHING",
                    (str(schema.SCHEMA_VERSION),),
                )
        except psycopg.OperationalError as exc:
            if str(exc).startswith("connection is bad: invalid"):  # libpq refused an option value: no retry helps
                raise ConfigError(f"--db {self.description}: {str(exc).removeprefix('connection is bad: ')}") from None
            raise StoreUnavailable(str(exc).strip().replace("\n", " ")) from None
        except psycopg.Error as exc:  # e.g. no right to create tables: retrying will not help either
            raise ConfigError(
                f"--db {self.description}: cannot set up the collector's tables: {str(exc).splitlines()[0]}"
            ) from None
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def is_data_error(self, exc: Exception) -> bool:
        import psycopg

        return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))

    def write(self, records: list[Record], now: float) -> WriteResult:
        events, intervals, statuses = split(records)
        result = WriteResult()
        if events:
            result.merge(self._run(self._write_events, events, now))
        if intervals:
            result.merge(self._run(self._write_intervals, unique_intervals(intervals), now))
        if statuses:
            result.merge(self._run(self._write_status, latest_status(statuses), now))
        return result

    def _run(self, fn: Any, *args: Any) -> Any:
        """``fn(cursor, *args)`` in one transaction; retried on deadlock/serialisation failure."""
        import psycopg
        from psycopg import errors

        if self._conn is None:
            raise StoreUnavailable("not connected")
        for attempt in range(_RETRIES):
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    return fn(cur, *args)
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self.close()
                raise StoreUnavailable(str(exc).strip() or type(exc).__name__) from None
        raise AssertionError("unreachable")

    def _write_events(self, cur: Any, events: list[EventRecord], now: float) -> WriteResult:
        cur.execute(
            "SELECT device_id, max_seq, extract(epoch FROM max_seq_ts)::float8 FROM devices "
            "WHERE device_id = ANY(%s) AND max_seq IS NOT NULL",
            (sorted({e.device_id for e in events}),),
        )
        known = {d: (int(m), float(t)) for d, m, t in cur.fetchall()}
        events, result = dedupe_batch(events)
        events, refused = screen_backwards(events, known)
        result.refused += refused
        cur.execute(_INCOMING)
        with cur.copy(_COPY_EVENTS) as copy:
            for e in events:
                copy.write_row(
                    (
                        e.device_id,
                        e.seq,
                        e.ts,
                        e.counter,
                        e.kind,
                        e.class_name,
                        e.direction,
                        e.track_id,
                        e.score,
                        e.frame,
                        e.src_ts,
                        e.extra,
                        e.received_at,
                    )
                )
        cur.execute(_INSERT_EVENTS, (now,))
        new = {(d, int(s)) for d, s in cur.fetchall()}
        inserted = [e for e in events if (e.device_id, e.seq) in new]
        result.inserted["events"] = len(inserted)
        result.lags_s.extend(now - e.ts for e in inserted)
        self._classify_not_inserted(cur, [e for e in events if (e.device_id, e.seq) not in new], result)
        updates = seq_updates(inserted)
        if updates:
            cur.execute(
                _UPSERT_SEQ,
                [
                    list(c)
                    for c in zip(
                        *[(u.device_id, u.first_seq, u.max_seq, u.max_seq_ts, u.last_event_at) for u in updates],
                        strict=True,
                    )
                ],
            )
        return result

    @staticmethod
    def _classify_not_inserted(cur: Any, rest: list[EventRecord], result: WriteResult) -> None:
        if not rest:
            return
        cur.execute(_STORED_EVENTS, ([e.device_id for e in rest], [e.seq for e in rest]))
        stored = {(row[0], int(row[1])): tuple(row[2:]) for row in cur.fetchall()}
        for ev in rest:
            key = (ev.device_id, ev.seq)
            if key in stored and same_event(ev, stored[key]):  # type: ignore[arg-type]
                result.duplicates += 1
            else:
                result.refused.append((ev, "seq_conflict", f"seq {ev.seq} is already stored with another event"))

    @staticmethod
    def _write_intervals(cur: Any, intervals: list[Any], now: float) -> WriteResult:
        result = WriteResult()
        cols = [
            list(c)
            for c in zip(
                *[
                    (
                        r.device_id,
                        r.counter,
                        r.class_name,
                        r.direction,
                        r.start,
                        r.end,
                        r.kind,
                        r.count,
                        r.observed_s,
                        r.frames,
                        r.extra,
                        r.received_at,
                    )
                    for r in intervals
                ],
                strict=True,
            )
        ]
        cur.execute(_UPSERT_INTERVALS, (now, *cols))
        result.inserted["intervals"] += len(cur.fetchall())
        return result

    @staticmethod
    def _write_status(cur: Any, statuses: list[StatusRecord], now: float) -> WriteResult:
        result = WriteResult()
        rows: dict[str, list[Any]] = defaultdict(lambda: [None] * 6)
        slot = {"availability": 0, "state": 2, "stats": 4}
        for st in statuses:
            rows[st.device_id][slot[st.field] : slot[st.field] + 2] = [st.value, st.received_at]
        devices = sorted(rows)
        cur.execute(_UPSERT_STATUS, [devices, *([rows[d][i] for d in devices] for i in range(6))])
        result.inserted["status"] += len(statuses)
        return result

    def check_gaps(self, now: float, grace_s: float) -> GapReport:
        report: GapReport = self._run(self._check_gaps, now, grace_s)
        return report

    @staticmethod
    def _check_gaps(cur: Any, now: float, grace_s: float) -> GapReport:
        report = GapReport()
        cur.execute(_GAP_ROWS)
        per_device: dict[str, tuple[int, list[tuple[int, float]]]] = {}
        for device, mark, seq, stored_at in cur.fetchall():
            per_device.setdefault(device, (int(mark), []))[1].append((int(seq), float(stored_at)))
        marks: list[tuple[str, int]] = []
        for device in sorted(per_device):
            mark, rows = per_device[device]
            new_mark, gaps = walk_gaps(device, mark, rows, now, grace_s)
            for gap in gaps:
                cur.execute(
                    "INSERT INTO seq_gaps VALUES (%s, %s, %s, to_timestamp(%s), NULL) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    (gap.device_id, gap.first_seq, gap.last_seq, now),
                )
                if cur.fetchone() is not None:
                    report.new.append(gap)
            if new_mark > mark:
                marks.append((device, new_mark))
        if marks:
            cur.execute(
                "UPDATE devices SET checked_seq = GREATEST(devices.checked_seq, u.m) "
                "FROM unnest(%s::text[], %s::bigint[]) AS u(d, m) WHERE devices.device_id = u.d",
                ([d for d, _ in marks], [m for _, m in marks]),
            )
        cur.execute(
            "SELECT device_id, first_seq, last_seq, missing FROM seq_gap_status WHERE filled_at IS NULL "
            "ORDER BY device_id, first_seq"
        )
        for device, first, last, missing in cur.fetchall():
            if missing == 0:
                cur.execute(
                    "UPDATE seq_gaps SET filled_at = to_timestamp(%s) WHERE device_id = %s AND first_seq = %s",
                    (now, device, first),
                )
                report.filled.append(Gap(device, int(first), int(last)))
            else:
                report.open_missing += int(missing)
        return report


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))

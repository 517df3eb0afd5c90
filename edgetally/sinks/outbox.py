"""Durable event outbox (SQLite, WAL): a count is on disk before it is sent, and leaves only when
the broker has acknowledged it.

Why: paho keeps QoS 1 messages in RAM only, so a crash, a power cut or a long broker outage
loses counts. Here each event is committed (with the new cumulative value of its counter) in one
transaction from the frame loop; the MQTT thread reads the backlog in ``seq`` order and deletes
rows after PUBACK. A crash between publish and delete re-sends the event after restart with the
same ``seq``: consumers de-duplicate by ``(device_id, seq)``. The size cap drops the OLDEST
events (the retained cumulative counters still carry their counts), counts the drops and logs
them: never silent.

Thread-safe: one connection guarded by one lock (the work per call is a few microseconds plus
one commit; two threads at a few thousand events/s never contend for long).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

CounterKey = tuple[str, str, str]  # (counter, class, direction)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
  counter TEXT NOT NULL, class TEXT NOT NULL, dir TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (counter, class, dir));
"""
_DROP_LOG_INTERVAL_S = 10.0


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    payload: bytes


@dataclass(frozen=True)
class OutboxMessage:
    """A durable message for a topic other than ``events`` (interval rows, movements)."""

    id: int
    topic: str
    payload: bytes


class Outbox:
    """``synchronous="full"`` survives power loss (one fsync per event); ``"normal"`` survives a
    process crash (SIGKILL) but a power cut may lose the last few commits."""

    def __init__(
        self,
        path: str | Path,
        max_events: int = 100_000,
        synchronous: Literal["full", "normal"] = "full",
    ) -> None:
        if max_events < 1:
            raise ValueError(f"outbox max_events: expected >= 1, got {max_events}")
        self.path = Path(path)
        self.max_events = max_events
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.executescript(_SCHEMA)
        self._next_seq = self._meta("next_seq", 1)
        self._dropped = self._meta("dropped", 0)
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        self._message_depth = int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        self._last_drop_log = 0.0

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    # -- frame-loop side ---------------------------------------------------------------------
    def append(self, build: Callable[[int], bytes], key: CounterKey, cumulative: int) -> int:
        """Commit one event (payload made by ``build(seq)``) and its counter's new total; return seq."""
        with self._lock:
            seq = self._next_seq
            payload = build(seq)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO events(seq, payload, created) VALUES(?, ?, ?)", (seq, payload, time.time())
                )
                self._upsert_counter(key, cumulative)
                self._set_meta("next_seq", seq + 1)
                dropped = self._enforce_cap(self._depth + 1)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._next_seq = seq + 1
            self._depth = self._depth + 1 - dropped
            if dropped:
                self._dropped += dropped
                self._log_drop()
            return seq

    def _upsert_counter(self, key: CounterKey, value: int) -> None:
        self._db.execute(
            "INSERT INTO counters(counter, class, dir, n) VALUES(?, ?, ?, ?) "
            "ON CONFLICT(counter, class, dir) DO UPDATE SET n=excluded.n",
            (*key, int(value)),
        )

    def _enforce_cap(self, depth: int) -> int:
        excess = depth - self.max_events
        if excess <= 0:
            return 0
        self._db.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (excess,)
        )
        self._set_meta("dropped", self._dropped + excess)
        return excess

    def _log_drop(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.warning(
                "MQTT outbox full (%d events): dropped the oldest; %d events dropped in total. "
                "Retained counters still carry every count; only per-event messages were lost.",
                self.max_events, self._dropped,
            )

    def enqueue(self, topic: str, payload: bytes) -> int:
        """Commit one non-event message (its own id sequence: event ``seq`` numbers stay gap-free).
        The same cap as events: past ``max_events`` waiting messages the oldest go, counted."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute("INSERT INTO messages(topic, payload, created) VALUES(?, ?, ?)",
                                       (topic, payload, time.time()))
                excess = self._message_depth + 1 - self.max_events
                if excess > 0:
                    self._db.execute("DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)",
                                     (excess,))
                    self._set_meta("dropped", self._dropped + excess)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._message_depth += 1 - max(excess, 0)
            if excess > 0:
                self._dropped += excess
                self._log_drop()
            return int(cur.lastrowid or 0)

    def pending_messages(self, after_id: int = 0, limit: int = 500) -> list[OutboxMessage]:
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                                    (after_id, limit)).fetchall()
        return [OutboxMessage(int(i), str(t), bytes(p)) for i, t, p in rows]

    def ack_messages(self, ids: Iterable[int]) -> int:
        batch = [(int(i),) for i in ids]
        if not batch:
            return 0
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM messages WHERE id=?", batch)
            self._db.execute("COMMIT")
            removed = self._db.total_changes - before
            self._message_depth -= removed
            return removed

    @property
    def message_depth(self) -> int:
        return self._message_depth

    def set_counters(self, values: dict[CounterKey, int], replace: bool = True) -> None:
        """Persist totals wholesale (after a reset): ``replace`` forgets keys not in ``values``."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if replace:
                    self._db.execute("DELETE FROM counters")
                for key, value in values.items():
                    self._upsert_counter(key, value)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- MQTT-thread side --------------------------------------------------------------------
    def pending(self, after_seq: int = 0, limit: int = 500) -> list[OutboxEntry]:
        """Unacknowledged events with ``seq > after_seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [OutboxEntry(int(s), bytes(p)) for s, p in rows]

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged events (a batch, one commit); return how many rows went."""
        batch = [(int(s),) for s in seqs]
        if not batch:
            return 0
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM events WHERE seq=?", batch)
            self._db.execute("COMMIT")
            removed = self._db.total_changes - before
            self._depth -= removed
            return removed

    # -- inspection ----------------------------------------------------------------------------
    def counters(self) -> dict[CounterKey, int]:
        with self._lock:
            rows = self._db.execute("SELECT counter, class, dir, n FROM counters").fetchall()
        return {(c, k, d): int(n) for c, k, d, n in rows}

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def close(self) -> None:
        with self._lock:
            self._db.close()

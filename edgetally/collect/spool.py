"""The collector's local spool: validated messages wait here (SQLite, WAL, fsync) while the
database is away, and are replayed in arrival order when it returns.

Bounded: when ``max_messages`` are waiting the collector stops acknowledging the broker, so the
rest stays queued at the broker (the persistent session) instead of being dropped here. What is
spooled is the raw message (topic, payload, receive time): replay validates it again, with the
same code as live messages.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
  id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, received_at REAL NOT NULL);
"""


@dataclass(frozen=True)
class SpoolEntry:
    id: int
    topic: str
    payload: bytes
    received_at: float


class Spool:
    def __init__(self, path: str | Path, max_messages: int = 1_000_000) -> None:
        if max_messages < 1:
            raise ValueError(f"spool max_messages: expected >= 1, got {max_messages}")
        self.path = Path(path)
        self.max_messages = max_messages
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # spooled messages are acknowledged to the broker
        self._db.executescript(_SCHEMA)
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])

    @property
    def depth(self) -> int:
        return self._depth

    def room(self) -> int:
        return max(0, self.max_messages - self._depth)

    def append(self, messages: list[tuple[str, bytes, float]]) -> None:
        """Commit (topic, payload, received_at) rows in one transaction; the caller checked ``room()``."""
        if not messages:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO spool (topic, payload, received_at) VALUES (?, ?, ?)", messages)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth += len(messages)

    def oldest(self, limit: int) -> list[SpoolEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, received_at FROM spool ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [SpoolEntry(int(i), str(t), bytes(p), float(r)) for i, t, p, r in rows]

    def remove_through(self, last_id: int) -> None:
        """Forget every entry up to ``last_id`` (they are in the database now)."""
        with self._lock:
            before = self._db.total_changes
            self._db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))
            self._depth -= self._db.total_changes - before

    def close(self) -> None:
        with self._lock:
            self._db.close()

"""The device's interval history: one SQLite file (WAL) per device, beside the MQTT outbox.

Tables (all times epoch seconds, bins named by their start and length):

- ``bins``      one row per bin the runner was up for: frames seen, seconds observed, closed or not;
- ``counts``    per bin x counter x class x direction (movements: direction "north->east"), sparse;
- ``occupancy`` per bin x zone x class: occupancy integrated over observed time (mean = occ_s /
                observed_s) and its peak;
- ``keys``      every counter x class x direction ever counted or declared, so a bin with nothing
                in it still reports 0 for them (a quiet bin is not a missing bin);
- ``meta``      device id and ``closed_until``: every bin before it has been closed (published).

A count is committed in the same transaction as the bin's latest observed time; with
``synchronous=FULL`` (default) it survives a power cut, like the outbox. Observed time alone is
written at most every few seconds (power cut: the last seconds of observation, never a count).
Thread-safe: one connection behind one lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bins (
  start INTEGER NOT NULL, bin_s INTEGER NOT NULL, frames INTEGER NOT NULL DEFAULT 0,
  observed_s REAL NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (start, bin_s));
CREATE TABLE IF NOT EXISTS counts (
  start INTEGER NOT NULL, bin_s INTEGER NOT NULL, counter TEXT NOT NULL, class TEXT NOT NULL, dir TEXT NOT NULL,
  n INTEGER NOT NULL, PRIMARY KEY (start, bin_s, counter, class, dir));
CREATE TABLE IF NOT EXISTS occupancy (
  start INTEGER NOT NULL, bin_s INTEGER NOT NULL, counter TEXT NOT NULL, class TEXT NOT NULL,
  occ_s REAL NOT NULL, peak INTEGER NOT NULL, PRIMARY KEY (start, bin_s, counter, class));
CREATE TABLE IF NOT EXISTS keys (
  counter TEXT NOT NULL, kind TEXT NOT NULL, class TEXT NOT NULL, dir TEXT NOT NULL, PRIMARY KEY (counter, class, dir));
"""

Key = tuple[str, str, str]  # (counter, class, direction)


@dataclass(frozen=True)
class KeyInfo:
    counter: str
    kind: str  # line | zone | movement
    class_name: str
    direction: str


@dataclass(frozen=True)
class BinRow:
    start: int
    bin_s: int
    frames: int
    observed_s: float
    closed: bool


@dataclass
class Occupancy:
    occ_s: float = 0.0
    peak: int = 0


class HistoryStore:
    """Open (create) ``path``; ``device`` is recorded on first use and checked afterwards."""

    def __init__(self, path: str | Path, device: str, synchronous: Literal["full", "normal"] = "full") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        stored = self.meta("device")
        if stored is None:
            self.set_meta("device", device)
        self.device = stored or device

    @classmethod
    def open_readonly(cls, path: str | Path) -> HistoryStore:
        """For reports: never creates a file (a typo in --state must not leave an empty history)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(path)
        return cls(path, device=path.stem.removeprefix("history-"))

    # -- meta ------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: object) -> None:
        with self._lock:
            self._set_meta(key, value)

    def _set_meta(self, key: str, value: object) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, str(value)),
        )

    # -- writes (the interval sink) -------------------------------------------------------------
    def add_count(
        self,
        start: int,
        bin_s: int,
        key: KeyInfo,
        observed: dict[tuple[int, int], tuple[int, float]],
        occupancy: dict[tuple[int, int, str, str], Occupancy],
    ) -> None:
        """One count, committed with the observed time and occupancy accumulated so far."""
        with self._lock, self._transaction():
            self._register(key)
            self._ensure_bin(start, bin_s)
            self._db.execute(
                "INSERT INTO counts(start, bin_s, counter, class, dir, n) VALUES(?, ?, ?, ?, ?, 1) "
                "ON CONFLICT(start, bin_s, counter, class, dir) DO UPDATE SET n = n + 1",
                (start, bin_s, key.counter, key.class_name, key.direction),
            )
            self._write_observed(observed, occupancy)

    def flush_observed(
        self, observed: dict[tuple[int, int], tuple[int, float]], occupancy: dict[tuple[int, int, str, str], Occupancy]
    ) -> None:
        with self._lock, self._transaction():
            self._write_observed(observed, occupancy)

    def declare(self, keys: Iterable[KeyInfo]) -> None:
        """Keys that must appear in every bin from now on, even at 0 (configured counters x classes)."""
        with self._lock, self._transaction():
            for key in keys:
                self._register(key)

    def close_bin(self, start: int, bin_s: int, closed_until: int) -> None:
        """Mark one bin closed (creating it when the runner saw nothing in it) and move the pointer."""
        with self._lock, self._transaction():
            self._ensure_bin(start, bin_s)
            self._db.execute("UPDATE bins SET closed=1 WHERE start=? AND bin_s=?", (start, bin_s))
            self._set_meta("closed_until", closed_until)

    def prune(self, before: int) -> int:
        """Forget bins that started before ``before``; returns how many bins went."""
        with self._lock, self._transaction():
            n = self._db.execute("DELETE FROM bins WHERE start < ?", (before,)).rowcount
            self._db.execute("DELETE FROM counts WHERE start < ?", (before,))
            self._db.execute("DELETE FROM occupancy WHERE start < ?", (before,))
        return int(n)

    def _register(self, key: KeyInfo) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO keys(counter, kind, class, dir) VALUES(?, ?, ?, ?)",
            (key.counter, key.kind, key.class_name, key.direction),
        )

    def _ensure_bin(self, start: int, bin_s: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO bins(start, bin_s) VALUES(?, ?)", (start, bin_s))

    def _write_observed(
        self, observed: dict[tuple[int, int], tuple[int, float]], occupancy: dict[tuple[int, int, str, str], Occupancy]
    ) -> None:
        for (start, bin_s), (frames, seconds) in observed.items():
            self._db.execute(
                "INSERT INTO bins(start, bin_s, frames, observed_s) VALUES(?, ?, ?, ?) ON CONFLICT(start, bin_s) "
                "DO UPDATE SET frames=excluded.frames, observed_s=excluded.observed_s",
                (start, bin_s, frames, seconds),
            )
        for (start, bin_s, zone, cls), occ in occupancy.items():
            self._db.execute(
                "INSERT INTO occupancy(start, bin_s, counter, class, occ_s, peak) VALUES(?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(start, bin_s, counter, class) DO UPDATE SET occ_s=excluded.occ_s, peak=excluded.peak",
                (start, bin_s, zone, cls, occ.occ_s, occ.peak),
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # -- reads (the sink on restart, the publisher, reports) -----------------------------------------
    def bins(self, start: int | None = None, end: int | None = None) -> list[BinRow]:
        lo, hi = (start if start is not None else -(2**62)), (end if end is not None else 2**62)
        with self._lock:
            rows = self._db.execute(
                "SELECT start, bin_s, frames, observed_s, closed FROM bins WHERE start >= ? AND "
                "start < ? ORDER BY start, bin_s",
                (lo, hi),
            ).fetchall()
        return [BinRow(int(s), int(b), int(f), float(o), bool(c)) for s, b, f, o, c in rows]

    def last_closed(self) -> BinRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT start, bin_s, frames, observed_s, closed FROM bins WHERE closed=1 "
                "ORDER BY start DESC, bin_s LIMIT 1"
            ).fetchone()
        return None if row is None else BinRow(int(row[0]), int(row[1]), int(row[2]), float(row[3]), bool(row[4]))

    def bin(self, start: int, bin_s: int) -> BinRow | None:
        rows = [b for b in self.bins(start, start + 1) if b.bin_s == bin_s]
        return rows[0] if rows else None

    def counts(self, start: int | None = None, end: int | None = None) -> dict[tuple[int, int], dict[Key, int]]:
        """(bin start, bin_s) -> {(counter, class, dir): n} for bins starting in [start, end)."""
        lo, hi = (start if start is not None else -(2**62)), (end if end is not None else 2**62)
        with self._lock:
            rows = self._db.execute(
                "SELECT start, bin_s, counter, class, dir, n FROM counts WHERE start >= ? AND start < ?", (lo, hi)
            ).fetchall()
        out: dict[tuple[int, int], dict[Key, int]] = {}
        for s, b, counter, cls, d, n in rows:
            out.setdefault((int(s), int(b)), {})[(counter, cls, d)] = int(n)
        return out

    def occupancy(
        self, start: int | None = None, end: int | None = None
    ) -> dict[tuple[int, int], dict[tuple[str, str], Occupancy]]:
        lo, hi = (start if start is not None else -(2**62)), (end if end is not None else 2**62)
        with self._lock:
            rows = self._db.execute(
                "SELECT start, bin_s, counter, class, occ_s, peak FROM occupancy WHERE start >= ? AND start < ?",
                (lo, hi),
            ).fetchall()
        out: dict[tuple[int, int], dict[tuple[str, str], Occupancy]] = {}
        for s, b, zone, cls, occ_s, peak in rows:
            out.setdefault((int(s), int(b)), {})[(zone, cls)] = Occupancy(float(occ_s), int(peak))
        return out

    def keys(self) -> list[KeyInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT counter, kind, class, dir FROM keys ORDER BY counter, class, dir"
            ).fetchall()
        return [KeyInfo(*map(str, r)) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")

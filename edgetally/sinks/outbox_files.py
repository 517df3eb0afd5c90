"""Opening the outbox file: create it, check it, or move a corrupt one aside and start anew.

A garbage or damaged outbox (a power cut on a cheap SD card, a copied half file) must not fail
every start until systemd gives up. It is renamed to ``<name>.corrupt-<UTC time>`` (with its
-wal/-shm files), kept for inspection, and whatever can still be read from it (counter totals,
the next seq, unsent events) is carried into the new file. When the next seq cannot be read, the
new outbox numbers from the current Unix time in milliseconds: consumers that keep the highest
seq per device (docs/mqtt.md) then never mistake new events for replays of old ones.

A file that cannot be opened for a disk reason (full, I/O error, permissions) is not touched:
the outbox runs in memory and retries (outbox.py).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
  counter TEXT NOT NULL, class TEXT NOT NULL, dir TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (counter, class, dir));
"""
_SIDE_FILES = ("-wal", "-shm")


@dataclass
class Opened:
    """An open outbox connection (``db`` None when the disk refused: ``error`` says why)."""

    db: sqlite3.Connection | None
    next_seq: int = 1
    dropped: int = 0
    depth: int = 0
    counters: dict[tuple[str, str, str], int] = field(default_factory=dict)
    message_depth: int = 0
    next_message_id: int = 1
    moved_to: Path | None = None
    error: sqlite3.Error | None = None


def seq_floor() -> int:
    """First seq of an outbox whose history is lost: above any seq it can have handed out."""
    return int(time.time() * 1000)


def connect_or_recover(path: Path, synchronous: str) -> Opened:
    """Open ``path``; a corrupt file is moved aside and replaced; a disk failure gives db=None."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return _open(path, synchronous)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:  # not a database, malformed: corrupt, not a disk problem
            moved = _move_aside(path)
            log.error(
                "outbox %s is corrupt (%s): moved it to %s (kept for inspection) and started a new one",
                path,
                exc,
                moved,
            )
        opened = _open(path, synchronous)
        _import(opened, salvage(moved), path)
        opened.moved_to = moved
        return opened
    except (OSError, sqlite3.OperationalError) as exc:
        log.error("outbox %s cannot be opened: %s", path, exc)
        return Opened(None, next_seq=seq_floor(), error=sqlite3.OperationalError(str(exc)))


def _open(path: Path, synchronous: str) -> Opened:
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {check}")
        db.executescript(SCHEMA)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        depth = int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        counters = {(c, k, d): int(n) for c, k, d, n in db.execute("SELECT counter, class, dir, n FROM counters")}
        messages, last_id = db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM messages").fetchone()
    except BaseException:
        db.close()
        raise
    return Opened(
        db, int(meta.get("next_seq", 1)), int(meta.get("dropped", 0)), depth, counters, int(messages), int(last_id) + 1
    )


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.rename(target)
    for suffix in _SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


@dataclass
class Salvage:
    next_seq: int | None = None
    dropped: int = 0
    counters: dict[tuple[str, str, str], int] = field(default_factory=dict)
    events: list[tuple[int, bytes, float]] = field(default_factory=list)
    messages: list[tuple[int, str, bytes, float]] = field(default_factory=list)


def salvage(path: Path) -> Salvage:
    """What can still be read from a corrupt outbox, table by table (read-only; never raises)."""
    found = Salvage()
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return found
    queries = {
        "meta": "SELECT key, value FROM meta",
        "counters": "SELECT counter, class, dir, n FROM counters",
        "events": "SELECT seq, payload, created FROM events ORDER BY seq",
        "messages": "SELECT id, topic, payload, created FROM messages ORDER BY id",
    }
    for table, sql in queries.items():
        try:
            rows = db.execute(sql).fetchall()
        except sqlite3.Error:
            continue
        if table == "meta":
            meta = {k: int(v) for k, v in rows}
            found.next_seq, found.dropped = meta.get("next_seq"), meta.get("dropped", 0)
        elif table == "counters":
            found.counters = {(c, k, d): int(n) for c, k, d, n in rows}
        elif table == "messages":
            found.messages = [(int(i), str(tp), bytes(p), float(t)) for i, tp, p, t in rows]
        else:
            found.events = [(int(s), bytes(p), float(t)) for s, p, t in rows]
    db.close()
    return found


def _import(opened: Opened, found: Salvage, path: Path) -> None:
    """Carry what was salvaged into the fresh outbox (one transaction)."""
    assert opened.db is not None
    last_event = found.events[-1][0] + 1 if found.events else 1
    opened.next_seq = max(found.next_seq or seq_floor(), last_event)
    opened.dropped = found.dropped
    opened.counters = dict(found.counters)
    opened.depth = len(found.events)
    opened.message_depth = len(found.messages)
    opened.next_message_id = found.messages[-1][0] + 1 if found.messages else 1
    db = opened.db
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO events(seq, payload, created) VALUES(?, ?, ?)", found.events)
    db.executemany("INSERT INTO messages(id, topic, payload, created) VALUES(?, ?, ?, ?)", found.messages)
    db.executemany(
        "INSERT INTO counters(counter, class, dir, n) VALUES(?, ?, ?, ?)", [(*k, n) for k, n in found.counters.items()]
    )
    db.executemany(
        "INSERT INTO meta(key, value) VALUES(?, ?)", [("next_seq", opened.next_seq), ("dropped", opened.dropped)]
    )
    db.execute("COMMIT")
    log.warning(
        "outbox %s: carried over %d counter totals, %d unsent events and %d other messages from the corrupt "
        "file; next seq %d",
        path,
        len(found.counters),
        len(found.events),
        len(found.messages),
        opened.next_seq,
    )

"""Durable event outbox (SQLite, WAL): a count is on disk before it is sent, and leaves only when
the broker has acknowledged it.

Why: paho keeps QoS 1 messages in RAM only, so a crash, a power cut or a long broker outage
loses counts. Each call of ``append_many`` commits its events (with the new cumulative values of
their counters) in ONE transaction, so a frame's events share one fsync (group commit); the
MQTT thread reads the backlog in ``seq`` order and deletes rows after PUBACK. A crash between
publish and delete re-sends the event after restart with the same ``seq``: consumers
de-duplicate by ``(device_id, seq)``. The size cap drops the OLDEST events (the retained
cumulative counters still carry their counts), counts the drops and logs them: never silent.

What ``synchronous="full"`` guarantees: when ``append``/``append_many`` returns and ``on_disk`` is
True, its events are on disk (fsync'd WAL) and survive a power cut. Deletes after PUBACK are
committed without their own fsync (the next event's fsync covers them): a power cut may bring an
acknowledged event back, to be re-sent with the same seq, never lose one.

When the disk fails (full, I/O error) the outbox keeps going in memory: events are still
numbered, counted and handed to the publisher, ``on_disk`` turns False and ``problem`` says why;
every ``retry_s`` the memory backlog is written out again, and once that works the outbox is
back on disk. A file that is not a readable outbox is moved aside (kept for inspection) and a
new one started (see outbox_files.py).

Other sinks' durable messages (interval rows, movements: ``enqueue(topic, payload)``) share the
file in a table of their own with their own ids, so event ``seq`` numbers stay gap-free; they get
the same treatment (cap, memory while the disk fails, deletes without fsync).

Thread-safe: one connection guarded by one lock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgetally.sinks.outbox_files import connect_or_recover

log = logging.getLogger(__name__)

CounterKey = tuple[str, str, str]  # (counter, class, direction)
Item = tuple[Callable[[int], bytes], CounterKey, int]  # (build payload from seq, counter key, cumulative)

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
    """``synchronous="full"`` survives power loss (one fsync per ``append_many``); ``"normal"``
    survives a process crash (SIGKILL) but a power cut may lose the last few commits."""

    def __init__(
        self,
        path: str | Path,
        max_events: int = 100_000,
        synchronous: Literal["full", "normal"] = "full",
        retry_s: float = 5.0,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"outbox max_events: expected >= 1, got {max_events}")
        self.path = Path(path)
        self.max_events = max_events
        self.retry_s = retry_s
        self._sync = synchronous.upper()
        self._lock = threading.RLock()
        self._mem: dict[int, bytes] = {}  # events not on disk (disk failed), in seq order
        self._mem_counters: dict[CounterKey, int] = {}
        self._mem_replace = False  # a set_counters(replace=True) is waiting to be written
        self._unsaved_acks: set[int] = set()  # acknowledged, still in the file (delete failed)
        self._mem_messages: dict[int, tuple[str, bytes]] = {}  # messages not on disk, in id order
        self._unsaved_message_acks: set[int] = set()
        self._last_drop_log = 0.0
        self._next_try = 0.0
        self.problem: str | None = None
        opened = connect_or_recover(self.path, self._sync)
        self._db, self.recovered_from = opened.db, opened.moved_to
        self._next_seq, self._dropped = opened.next_seq, opened.dropped
        self._db_depth = opened.depth
        self._db_messages, self._next_message_id = opened.message_depth, opened.next_message_id
        self._saved_counters = opened.counters
        if opened.error is not None:
            self._fail(opened.error)

    # -- frame-loop side ---------------------------------------------------------------------
    def append(self, build: Callable[[int], bytes], key: CounterKey, cumulative: int) -> int:
        """Commit one event (payload made by ``build(seq)``) and its counter's new total; return seq."""
        return self.append_many([(build, key, cumulative)])[0]

    def append_many(self, items: Sequence[Item]) -> list[int]:
        """Commit several events in one transaction (one fsync); return their seqs in order."""
        with self._lock:
            first = self._next_seq
            rows = [(first + i, build(first + i)) for i, (build, _, _) in enumerate(items)]
            totals = {key: int(value) for _, key, value in items}
            self._next_seq = first + len(rows)
            if self.problem is None:
                self._write_events(rows, totals)  # on a disk error it keeps them in memory
            else:
                self._keep_in_memory(rows, totals)
                self.retry()
            return [seq for seq, _ in rows]

    def _write_events(self, rows: list[tuple[int, bytes]], totals: dict[CounterKey, int]) -> None:
        created = time.time()

        def work() -> int:
            self._db.executemany(
                "INSERT INTO events(seq, payload, created) VALUES(?, ?, ?)", [(s, p, created) for s, p in rows]
            )
            self._upsert_counters(totals)
            self._set_meta("next_seq", self._next_seq)
            return self._enforce_cap(self._db_depth + len(rows))

        try:
            dropped = self._transaction(work)
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            self._keep_in_memory(rows, totals)
            return
        self._db_depth += len(rows) - dropped
        self._saved_counters.update(totals)
        if dropped:
            self._note_dropped(dropped)

    def _keep_in_memory(self, rows: list[tuple[int, bytes]], totals: dict[CounterKey, int]) -> None:
        self._mem.update(rows)
        self._mem_counters.update(totals)
        excess = len(self._mem) - self.max_events
        if excess > 0:
            for seq in list(self._mem)[:excess]:
                del self._mem[seq]
            self._note_dropped(excess)

    def set_counters(self, values: dict[CounterKey, int], replace: bool = True) -> None:
        """Persist totals wholesale (after a reset): ``replace`` forgets keys not in ``values``."""
        with self._lock:
            if self.problem is None:
                try:
                    self._transaction(lambda: self._replace_counters(values, replace))
                except sqlite3.DatabaseError as exc:
                    self._fail(exc)
                else:
                    if replace:
                        self._saved_counters.clear()
                    self._saved_counters.update(values)
                    return
            if replace:
                self._mem_counters.clear()
                self._mem_replace = True
            self._mem_counters.update(values)

    def _replace_counters(self, values: dict[CounterKey, int], replace: bool) -> None:
        if replace:
            self._db.execute("DELETE FROM counters")
        self._upsert_counters(values)

    def enqueue(self, topic: str, payload: bytes) -> int:
        """Commit one non-event message (published after the events, acknowledged like them); its id."""
        with self._lock:
            msg_id, self._next_message_id = self._next_message_id, self._next_message_id + 1
            if self.problem is None:
                created = time.time()

                def work() -> int:
                    self._db.execute(
                        "INSERT INTO messages(id, topic, payload, created) VALUES(?, ?, ?, ?)",
                        (msg_id, topic, payload, created),
                    )
                    return self._enforce_message_cap(self._db_messages + 1)

                try:
                    dropped = self._transaction(work)
                except sqlite3.DatabaseError as exc:
                    self._fail(exc)
                else:
                    self._db_messages += 1 - dropped
                    if dropped:
                        self._note_dropped(dropped)
                    return msg_id
            self._mem_messages[msg_id] = (topic, payload)
            excess = len(self._mem_messages) - self.max_events
            if excess > 0:
                for old in list(self._mem_messages)[:excess]:
                    del self._mem_messages[old]
                self._note_dropped(excess)
            self.retry()
            return msg_id

    # -- MQTT-thread side --------------------------------------------------------------------
    def pending(self, after_seq: int = 0, limit: int = 500) -> list[OutboxEntry]:
        """Unacknowledged events with ``seq > after_seq``, oldest first (disk and memory)."""
        with self._lock:
            rows = (
                self._db.execute(
                    "SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit + len(self._unsaved_acks)),
                ).fetchall()
                if self._db_depth
                else []
            )
            entries = [OutboxEntry(int(s), bytes(p)) for s, p in rows if int(s) not in self._unsaved_acks]
            entries += [OutboxEntry(s, p) for s, p in self._mem.items() if s > after_seq][:limit]
        entries.sort(key=lambda e: e.seq)
        return entries[:limit]

    def ack(self, seqs: Iterable[int]) -> int:
        """Forget acknowledged events (a batch); return how many went."""
        with self._lock:
            on_file = []
            removed = 0
            for seq in seqs:
                if self._mem.pop(int(seq), None) is not None:
                    removed += 1
                else:
                    on_file.append(int(seq))
            if on_file:
                removed += self._delete(on_file)
            return removed

    def _delete(self, seqs: list[int]) -> int:
        """Delete rows without an fsync of their own (a lost delete only means a re-send)."""
        if self.problem is not None:
            fresh = set(seqs) - self._unsaved_acks
            self._unsaved_acks |= fresh
            return len(fresh)
        before = self._db.total_changes
        try:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._transaction(lambda: self._db.executemany("DELETE FROM events WHERE seq=?", [(s,) for s in seqs]))
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            self._unsaved_acks |= set(seqs)
            return len(seqs)
        finally:
            self._restore_sync()
        removed = self._db.total_changes - before
        self._db_depth -= removed
        return removed

    def pending_messages(self, after_id: int = 0, limit: int = 500) -> list[OutboxMessage]:
        """Unacknowledged messages with ``id > after_id``, oldest first (disk and memory)."""
        with self._lock:
            rows = (
                self._db.execute(
                    "SELECT id, topic, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit + len(self._unsaved_message_acks)),
                ).fetchall()
                if self._db_messages
                else []
            )
            out = [
                OutboxMessage(int(i), str(tp), bytes(p))
                for i, tp, p in rows
                if int(i) not in self._unsaved_message_acks
            ]
            out += [OutboxMessage(i, tp, p) for i, (tp, p) in self._mem_messages.items() if i > after_id][:limit]
        out.sort(key=lambda m: m.id)
        return out[:limit]

    def ack_messages(self, ids: Iterable[int]) -> int:
        """Forget acknowledged messages; return how many went."""
        with self._lock:
            on_file = []
            removed = 0
            for msg_id in ids:
                if self._mem_messages.pop(int(msg_id), None) is not None:
                    removed += 1
                else:
                    on_file.append(int(msg_id))
            if on_file:
                removed += self._delete_messages(on_file)
            return removed

    def _delete_messages(self, ids: list[int]) -> int:
        """As ``_delete``, for the messages table."""
        if self.problem is not None:
            fresh = set(ids) - self._unsaved_message_acks
            self._unsaved_message_acks |= fresh
            return len(fresh)
        before = self._db.total_changes
        try:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._transaction(lambda: self._db.executemany("DELETE FROM messages WHERE id=?", [(i,) for i in ids]))
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            self._unsaved_message_acks |= set(ids)
            return len(ids)
        finally:
            self._restore_sync()
        removed = self._db.total_changes - before
        self._db_messages -= removed
        return removed

    def _restore_sync(self) -> None:
        try:
            self._db.execute(f"PRAGMA synchronous={self._sync}")
        except sqlite3.DatabaseError:
            pass  # the connection is broken; _fail already said so

    # -- disk failure and recovery -------------------------------------------------------------
    def _fail(self, exc: BaseException | str) -> None:
        first = self.problem is None
        self.problem = f"outbox {self.path}: {exc}"
        self._next_try = time.monotonic() + self.retry_s
        if first:
            log.error(
                "%s: counting goes on in memory (%d events, not power-cut safe) and is retried every "
                "%.1f s; free disk space",
                self.problem,
                len(self._mem),
                self.retry_s,
            )

    def retry(self, force: bool = False) -> bool:
        """Write the memory backlog, counters and unsaved deletes to the file; True when the
        outbox is on disk. While the disk fails, ``append`` and the publisher thread call this;
        it tries at most every ``retry_s`` unless ``force``."""
        with self._lock:
            if self.problem is None:
                return True
            if not force and time.monotonic() < self._next_try:
                return False
            self._next_try = time.monotonic() + self.retry_s
            if self._db is None and not self._reopen():
                return False
            try:
                dropped = self._transaction(self._flush_memory)
            except sqlite3.DatabaseError as exc:
                self.problem = f"outbox {self.path}: {exc}"
                return False
            self._db_depth += len(self._mem) - len(self._unsaved_acks) - dropped
            self._db_messages += len(self._mem_messages) - len(self._unsaved_message_acks)
            if self._mem_replace:
                self._saved_counters.clear()
            self._saved_counters.update(self._mem_counters)
            log.warning("outbox %s: on disk again (%d events written from memory)", self.path, len(self._mem))
            self._mem.clear()
            self._mem_counters.clear()
            self._unsaved_acks.clear()
            self._mem_messages.clear()
            self._unsaved_message_acks.clear()
            self._mem_replace = False
            self.problem = None
            return True

    def _reopen(self) -> bool:
        """The file could not be opened at start (disk full, I/O error): try again."""
        opened = connect_or_recover(self.path, self._sync)
        if opened.db is None:
            return False
        self._db, self._db_depth = opened.db, opened.depth
        self._db_messages = opened.message_depth
        self._next_message_id = max(self._next_message_id, opened.next_message_id)
        self._next_seq = max(self._next_seq, opened.next_seq)
        self._dropped += opened.dropped
        self._saved_counters = {**opened.counters, **self._saved_counters}
        return True

    def _flush_memory(self) -> int:
        self._db.executemany("DELETE FROM events WHERE seq=?", [(s,) for s in self._unsaved_acks])
        self._db.executemany("DELETE FROM messages WHERE id=?", [(i,) for i in self._unsaved_message_acks])
        created = time.time()
        self._db.executemany(
            "INSERT INTO messages(id, topic, payload, created) VALUES(?, ?, ?, ?)",
            [(i, tp, p, created) for i, (tp, p) in self._mem_messages.items()],
        )
        self._db.executemany(
            "INSERT INTO events(seq, payload, created) VALUES(?, ?, ?)", [(s, p, created) for s, p in self._mem.items()]
        )
        if self._mem_replace:
            self._db.execute("DELETE FROM counters")
        self._upsert_counters(self._mem_counters)
        self._set_meta("next_seq", self._next_seq)
        self._set_meta("dropped", self._dropped)
        return self._enforce_cap(self._db_depth + len(self._mem) - len(self._unsaved_acks))

    # -- SQL helpers -----------------------------------------------------------------------------
    def _transaction(self, work: Callable[[], object]) -> object:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite already rolled back after SQLITE_FULL / IOERR: a second ROLLBACK would fail
            # with "no transaction is active" and hide the real error.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return result

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def _upsert_counters(self, values: dict[CounterKey, int]) -> None:
        self._db.executemany(
            "INSERT INTO counters(counter, class, dir, n) VALUES(?, ?, ?, ?) "
            "ON CONFLICT(counter, class, dir) DO UPDATE SET n=excluded.n",
            [(*key, int(value)) for key, value in values.items()],
        )

    def _enforce_cap(self, depth: int) -> int:
        excess = depth - self.max_events
        if excess <= 0:
            return 0
        self._db.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (excess,))
        self._set_meta("dropped", self._dropped + excess)
        return excess

    def _enforce_message_cap(self, depth: int) -> int:
        excess = depth - self.max_events
        if excess <= 0:
            return 0
        self._db.execute("DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)", (excess,))
        self._set_meta("dropped", self._dropped + excess)
        return excess

    def _note_dropped(self, n: int) -> None:
        self._dropped += n
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.warning(
                "MQTT outbox full (%d events): dropped the oldest; %d events dropped in total. "
                "Retained counters still carry every count; only per-event messages were lost.",
                self.max_events,
                self._dropped,
            )

    # -- inspection ----------------------------------------------------------------------------
    def counters(self) -> dict[CounterKey, int]:
        """Every counter's latest total (persisted, or held in memory while the disk fails)."""
        with self._lock:
            out = {} if self._mem_replace else dict(self._saved_counters)
            out.update(self._mem_counters)
            return out

    @property
    def on_disk(self) -> bool:
        """False while events are held in memory because the disk failed (see ``problem``)."""
        return self.problem is None

    @property
    def depth(self) -> int:
        return self._db_depth - len(self._unsaved_acks) + len(self._mem)

    @property
    def message_depth(self) -> int:
        """Other messages not yet acknowledged (disk and memory)."""
        return self._db_messages - len(self._unsaved_message_acks) + len(self._mem_messages)

    @property
    def memory_depth(self) -> int:
        """Events held only in memory (lost by a crash or power cut until written out)."""
        return len(self._mem)

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def close(self) -> None:
        with self._lock:
            if self.problem is not None:
                self.retry(force=True)
            if self.problem is not None and self._mem:
                log.error(
                    "%s: %d events and the newest totals could not be written and are lost with this process",
                    self.problem,
                    len(self._mem),
                )
            if self._db is not None:
                self._db.close()

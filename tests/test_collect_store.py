"""The stores' rules, the same on SQLite and on a real PostgreSQL server: exactly once, conflicts,
a seq going backwards, gaps found and filled, interval and state upserts, the views."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from edgetally.collect.messages import EventRecord, IntervalRecord, StatusRecord
from edgetally.collect.store import Store, open_store
from edgetally.errors import ConfigError

T = 1_800_000_000.0  # 2027-01-15 08:00 UTC, a multiple of 900 s


def ev(seq: int, device: str = "j1", ts: float | None = None, track: int | None = None, **kw: object) -> EventRecord:
    base = EventRecord(
        device,
        seq,
        T + seq if ts is None else ts,
        "north",
        "line",
        "car",
        "in",
        seq if track is None else track,
        0.9,
        10 * seq,
        seq / 25,
        None,
        T + seq + 0.1,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def interval(count: int, observed: float, start: float = T) -> IntervalRecord:
    return IntervalRecord("j1", "north", "line", "car", "in", start, start + 900, count, observed, None, None, T)


@dataclass
class Db:
    store: Store
    query: Callable[[str], list[tuple]]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'c.db'}"

        def query(sql: str) -> list[tuple]:
            with sqlite3.connect(tmp_path / "c.db") as conn:
                return conn.execute(sql).fetchall()
    else:
        url = request.getfixturevalue("pg_url")  # skips without a server or psycopg
        import psycopg

        def query(sql: str) -> list[tuple]:
            with psycopg.connect(url) as conn:
                return conn.execute(sql).fetchall()

    store = open_store(url)
    store.open()
    yield Db(store, query)
    store.close()


def test_a_batch_written_twice_is_stored_once(db: Db) -> None:
    batch = [ev(s, d) for d in ("j1", "j2") for s in range(1, 51)]
    first = db.store.write(batch, T + 100)
    again = db.store.write(batch[::-1], T + 101)
    assert (first.inserted["events"], first.duplicates) == (100, 0)
    assert (again.inserted["events"], again.duplicates, again.refused) == (0, 100, [])
    assert db.query("SELECT count(*), count(DISTINCT device_id || ':' || seq) FROM events") == [(100, 100)]
    assert db.query("SELECT device_id, first_seq, max_seq FROM devices ORDER BY 1") == [("j1", 1, 50), ("j2", 1, 50)]


def test_the_same_seq_twice_in_one_batch(db: Db) -> None:
    result = db.store.write([ev(1), ev(1), ev(2), ev(2, track=99)], T + 10)
    assert (result.inserted["events"], result.duplicates) == (2, 1)
    assert [(r.seq, why) for r, why, _ in result.refused] == [(2, "seq_conflict")]  # type: ignore[union-attr]


def test_another_event_under_a_stored_seq_is_a_conflict_not_a_duplicate(db: Db) -> None:
    db.store.write([ev(s) for s in range(1, 6)], T + 10)
    # an outbox that was wiped numbers again from 1: different events under stored numbers
    result = db.store.write([ev(3, ts=T + 3, track=777)], T + 20)
    assert [why for _, why, _ in result.refused] == ["seq_conflict"]
    assert result.duplicates == 0
    assert db.query("SELECT track_id FROM events WHERE seq = 3") == [(3,)]


def test_a_seq_going_backwards_is_refused_but_a_late_arrival_is_stored(db: Db) -> None:
    db.store.write([ev(10, ts=T + 100)], T + 101)
    late = ev(4, ts=T + 40)  # numbered lower AND counted earlier: reordered on the way, keep it
    restarted = ev(5, ts=T + 200)  # numbered lower but counted later: the device's numbering restarted
    result = db.store.write([late, restarted], T + 201)
    assert result.inserted["events"] == 1
    assert [(r.seq, why) for r, why, _ in result.refused] == [(5, "seq_backwards")]  # type: ignore[union-attr]
    assert db.query("SELECT seq FROM events ORDER BY seq") == [(4,), (10,)]


def test_backwards_inside_one_batch(db: Db) -> None:
    result = db.store.write([ev(20, ts=T + 20), ev(12, ts=T + 90)], T + 100)
    assert [(r.seq, why) for r, why, _ in result.refused] == [(12, "seq_backwards")]  # type: ignore[union-attr]


def test_a_gap_is_reported_after_the_grace_period_and_marked_filled_later(db: Db) -> None:
    db.store.write([ev(s) for s in (1, 2, 3, 7, 8)], T + 10)
    young = db.store.check_gaps(T + 15, grace_s=30)
    assert (young.new, young.open_missing) == ([], 0)
    old = db.store.check_gaps(T + 41, grace_s=30)
    assert [(g.device_id, g.first_seq, g.last_seq) for g in old.new] == [("j1", 4, 6)]
    assert old.open_missing == 3
    assert db.store.check_gaps(T + 50, grace_s=30).new == []  # reported once
    db.store.write([ev(4), ev(5), ev(6)], T + 60)  # a late replay
    filled = db.store.check_gaps(T + 61, grace_s=30)
    assert [(g.first_seq, g.last_seq) for g in filled.filled] == [(4, 6)]
    assert filled.open_missing == 0
    assert db.query("SELECT first_seq, last_seq, missing FROM seq_gap_status") == [(4, 6, 0)]


def test_no_gap_when_the_sequence_is_whole(db: Db) -> None:
    db.store.write([ev(s, d) for d in ("a", "b") for s in range(5, 205)], T + 300)
    assert db.store.check_gaps(T + 1000, grace_s=0).new == []
    assert db.query("SELECT device_id, checked_seq FROM devices ORDER BY 1") == [("a", 204), ("b", 204)]


def test_an_interval_bin_is_replaced_only_by_a_more_complete_one(db: Db) -> None:
    assert db.store.write([interval(10, 600.0)], T).inserted["intervals"] == 1
    assert db.store.write([interval(10, 600.0)], T).inserted["intervals"] == 0  # redelivery
    assert db.store.write([interval(4, 300.0)], T).inserted["intervals"] == 0  # less complete: kept out
    assert db.store.write([interval(12, 899.0), interval(11, 700.0)], T).inserted["intervals"] == 1
    assert db.query("SELECT count, observed_s FROM interval_counts") == [(12, 899.0)]


def test_device_state_only_moves_forward_in_time(db: Db) -> None:
    db.store.write(
        [StatusRecord("j1", "availability", "online", T + 5), StatusRecord("j1", "state", "ready", T + 5)], T
    )
    db.store.write([StatusRecord("j1", "availability", "offline", T + 2)], T)  # older (replayed): ignored
    db.store.write([StatusRecord("j1", "stats", '{"fps":12.5,"v":1}', T + 6)], T)
    got = db.query("SELECT availability, state, stats FROM devices")
    assert got[0][:2] == ("online", "ready")
    assert "12.5" in str(got[0][2])


def test_the_15_minute_view_counts_events_per_bin(db: Db) -> None:
    events = [ev(s, ts=T + 10 * (s - 1), direction=("in" if s % 3 else "out")) for s in range(1, 181)]  # 30 min
    db.store.write(events, T + 2000)
    rows = db.query("SELECT dir, count FROM event_counts_15m ORDER BY bin_start, dir")
    first = [e for e in events if e.ts < T + 900]
    assert rows[0] == ("in", sum(e.direction == "in" for e in first))
    assert sum(n for _, n in rows) == 180 and len(rows) == 4


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:///", "sqlite:///dir/", "counts.db"])
def test_a_bad_database_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="--db"):
        open_store(url)

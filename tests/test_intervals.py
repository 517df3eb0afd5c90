"""Interval counts: bin lengths, config refusals, and the recorder on a driven clock (bins, observed
time, outages, zone occupancy, a restart in the middle of a bin, a clock that goes back)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgetally.cli import main
from edgetally.config import validate_file
from edgetally.history.bins import bin_start, parse_bin
from edgetally.history.recorder import IntervalRecorder
from edgetally.history.rows import IntervalRow, merge, stored_rows
from edgetally.history.store import HistoryStore, KeyInfo

T0 = 1_800_000_000  # a UTC quarter hour (and a local one in every whole-hour zone)
CAR_IN = KeyInfo("L", "line", "car", "in")
CAR_OUT = KeyInfo("L", "line", "car", "out")


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("15m", 900),
        ("1m", 60),
        ("5m", 300),
        ("60m", 3600),
        ("1h", 3600),
        ("30s", 30),
        ("15", 900),
        (5, 300),
        (" 10 min ", 600),
        ("20m", 1200),
    ],
)
def test_bin_lengths_that_divide_an_hour(value: str | int, seconds: int) -> None:
    assert parse_bin(value) == seconds


@pytest.mark.parametrize(
    "value, message",
    [
        ("7m", "does not divide an hour"),
        ("45m", "does not divide an hour"),
        ("2h", "does not divide an hour"),
        ("0m", "at least 10 s"),
        ("5s", "at least 10 s"),
        ("quarter", "expected e.g. 15m"),
        (True, "expected e.g. 15m"),
    ],
)
def test_bin_lengths_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bin(value)  # type: ignore[arg-type]


BASE = (
    "model: m\nsource: s.mp4\nlines:\n  - {name: north, points: '0,0,10,10'}\n  - {name: south, points: '0,5,10,15'}\n"
)


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("intervals: {bin: 7m}\n", ":6: intervals.bin: Value error, bin length '7m' does not divide an hour"),
        (
            "intervals:\n  bin: [5m, 15m]\n",
            ":7: intervals.bin: Value error, one bin length only, got ['5m', '15m']: bins of several lengths overlap",
        ),
        (
            "movements:\n  - name: j\n    approaches: [north, west]\n",
            ":8: movements.0.approaches.1: unknown approach 'west': not a line or zone of this config (known: north, south)",
        ),
        (
            "movements:\n  - {name: north, approaches: [north, south]}\n",
            ":7: movements.0.name: movement name 'north' is already a line or zone name",
        ),
        (
            "movements:\n  - {name: j, approaches: [north, north]}\n",
            ":7: movements.0.approaches: Value error, each approach once",
        ),
    ],
)
def test_config_refuses_bad_intervals_and_movements(tmp_path: Path, extra: str, expected: str) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(BASE + extra)
    errors = validate_file(cfg)
    assert len(errors) == 1 and errors[0].startswith(str(cfg)) and expected in errors[0], errors
    assert main(["validate-config", str(cfg)]) == 2


def test_config_accepts_intervals_and_movements(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(BASE + "intervals: {bin: 5m}\nmovements:\n  - {name: j, approaches: [north, south], entry: out}\n")
    assert validate_file(cfg) == []


def test_bins_align_to_the_local_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """India is UTC+5:30: an hourly bin starts on the local hour, i.e. at :30 UTC."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        t = T0 + 3 * 3600 + 17 * 60  # 08:17 UTC = 13:47 IST
        start = bin_start(t, 3600)
        assert time.localtime(start).tm_min == 0 and time.gmtime(start).tm_min == 30
        assert start <= t < start + 3600
        assert bin_start(t, 900) % 900 == 0  # 15 min bins: the same in both clocks
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def _store(tmp: Path) -> HistoryStore:
    return HistoryStore(tmp / "history-dev.sqlite", "dev", "normal")


def _counts(rows: list[IntervalRow]) -> dict[tuple[int, str], int]:
    return {(r.start - T0, r.direction): r.count for r in rows}


def test_counts_land_in_their_wall_clock_bins(tmp_path: Path) -> None:
    rec = IntervalRecorder(_store(tmp_path), 60, gap_s=5.0)
    assert rec.start(T0 + 1) == []
    for t, key in [(5, CAR_IN), (59.9, CAR_IN), (60.0, CAR_OUT), (61, CAR_IN), (185, CAR_OUT)]:
        rec.count(key, T0 + t)
    closed = rec.frame(T0 + 190)  # a frame in the fourth bin closes the first three
    assert [rows[0].start - T0 for rows in closed] == [0, 60, 120]
    flat = [r for rows in closed for r in rows]
    assert _counts(flat) == {
        (0, "in"): 2,
        (0, "out"): 0,
        (60, "in"): 1,
        (60, "out"): 1,
        (120, "in"): 0,
        (120, "out"): 0,
    }
    assert all(r.device == "dev" and r.bin_s == 60 for r in flat)


def test_observed_time_splits_at_bin_edges_and_skips_outages(tmp_path: Path) -> None:
    rec = IntervalRecorder(_store(tmp_path), 60, gap_s=2.0)
    rec.start(T0)
    closed = []
    for t in [50.0, 51.0, 52.0, 59.5, 60.5]:  # 52 -> 59.5 is a 7.5 s outage: not observed
        closed += rec.frame(T0 + t)
    for k in range(1, 31):  # then 1 fps until 90.5 s
        closed += rec.frame(T0 + 60.5 + k)
    assert len(closed) == 1
    first = closed[0][0] if closed[0] else None
    row = rec.store.bin(T0, 60)
    assert row is not None and row.closed and row.frames == 4
    assert row.observed_s == pytest.approx(2.0 + 0.5)  # 50->51->52, and 59.5->60 of the 59.5->60.5 frame gap
    assert first is None  # no keys counted yet: a closed bin has no rows to publish
    rec.flush()
    second = rec.store.bin(T0 + 60, 60)
    assert second is not None and second.frames == 31 and second.observed_s == pytest.approx(0.5 + 30.0)


def test_outage_bins_close_on_time_with_nothing_observed(tmp_path: Path) -> None:
    rec = IntervalRecorder(_store(tmp_path), 60, gap_s=5.0)
    rec.start(T0)
    rec.count(CAR_IN, T0 + 10)
    rec.frame(T0 + 10)
    assert rec.tick(T0 + 62) == []  # still within gap_s of the bin's end: a late frame may finish it
    closed = rec.tick(T0 + 3 * 60 + 6)  # camera dead since 10 s: the timer closes three bins
    assert [rows[0].start - T0 for rows in closed] == [0, 60, 120]
    assert [(r.count, r.frames, r.observed_s) for rows in closed for r in rows if r.direction == "in"] == [
        (1, 1, 0.0),
        (0, 0, 0.0),
        (0, 0, 0.0),
    ]


def test_restart_in_the_middle_of_a_bin_continues_it(tmp_path: Path) -> None:
    rec = IntervalRecorder(_store(tmp_path), 900, gap_s=15.0)  # a frame every 10 s is seeing
    rec.start(T0 + 100)
    for t in range(100, 200, 10):
        rec.frame(T0 + t)
        rec.count(CAR_IN, T0 + t)
    rec.store.close()  # no flush, no close of the bin: as after a kill (every count was committed)
    again = IntervalRecorder(_store(tmp_path), 900, gap_s=15.0)
    assert again.start(T0 + 400) == []  # the bin has not ended: nothing to close
    for t in range(400, 500, 10):
        again.frame(T0 + t)
        again.count(CAR_IN, T0 + t)
    closed = again.frame(T0 + 901)
    assert len(closed) == 1 and _counts(closed[0]) == {(0, "in"): 20}
    # 90 s seen before the restart, 90 s after; the 210 s down and the 411 s without frames were not seen
    assert closed[0][0].frames == 20 and closed[0][0].observed_s == pytest.approx(90.0 + 90.0)


def test_restart_after_the_bin_ended_closes_it_once(tmp_path: Path) -> None:
    rec = IntervalRecorder(_store(tmp_path), 60, gap_s=5.0)
    rec.start(T0)
    rec.count(CAR_IN, T0 + 30)
    rec.store.close()
    again = IntervalRecorder(_store(tmp_path), 60, gap_s=5.0)
    closed = again.start(T0 + 3600)  # down for an hour: the open bin is closed, the gap is not invented
    assert len(closed) == 1 and _counts(closed[0]) == {(0, "in"): 1}
    assert [b.start - T0 for b in again.store.bins()] == [0]
    assert again.frame(T0 + 3601) == [] and again.tick(T0 + 3700) != []


def test_clock_going_back_counts_into_the_open_bin(tmp_path: Path) -> None:
    rec = IntervalRecorder(_store(tmp_path), 60, gap_s=5.0)
    rec.start(T0)
    rec.frame(T0 + 130)  # closes 0 and 60
    assert rec.count(CAR_IN, T0 + 20) == T0 + 120  # NTP stepped the clock back: never reopen a closed bin
    assert rec.store.counts()[(T0 + 120, 60)] == {("L", "car", "in"): 1}


def test_zone_occupancy_mean_and_peak(tmp_path: Path) -> None:
    rec = IntervalRecorder(_store(tmp_path), 60, gap_s=5.0)
    rec.start(T0)
    entered, exited = KeyInfo("Z", "zone", "car", "entered"), KeyInfo("Z", "zone", "car", "exited")
    events = {10: [entered], 20: [entered], 30: [exited], 40: [exited]}  # occupancy 1 (10-20 s), 2 (-30), 1 (-40)
    for t in range(61):
        for key in events.get(t, []):
            rec.count(key, T0 + t)
        rec.frame(T0 + t)
    rows = stored_rows(rec.store, T0, T0 + 1)
    row = next(r for r in rows if r.direction == "entered")
    assert row.count == 2 and row.occupancy_peak == 2
    assert row.occupancy_mean == pytest.approx((10 + 20 + 10) / 60.0, abs=0.02)  # one frame of resolution


def test_merge_adds_bins_up_and_refuses_finer(tmp_path: Path) -> None:
    rec = IntervalRecorder(_store(tmp_path), 300, gap_s=5.0)
    rec.start(T0)
    for k in range(9):  # one count per 5 min bin over 45 min
        rec.count(CAR_IN, T0 + 300 * k + 1)
        rec.frame(T0 + 300 * k + 1)
    rec.frame(T0 + 2700)
    rows = stored_rows(rec.store)
    merged = merge(rows, 900, T0, T0 + 2700, "dev", rec.store.keys())
    assert [(r.start - T0, r.count) for r in merged if r.direction == "in"] == [(0, 3), (900, 3), (1800, 3)]
    with pytest.raises(ValueError, match="multiple of them"):
        merge(rows, 60, T0, T0 + 2700, "dev", rec.store.keys())

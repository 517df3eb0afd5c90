"""`edge report` over a history written by the recorder on a driven clock: rows and columns, merged
bins, gaps, peak hours, the three formats, and clear refusals (exit 2)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from edgetally.cli import main
from edgetally.history.bins import iso
from edgetally.history.recorder import IntervalRecorder
from edgetally.history.store import HistoryStore, KeyInfo

T0 = 1_800_000_000  # a UTC quarter hour
COLUMNS = [
    "bin_start",
    "bin_end",
    "device",
    "counter",
    "class",
    "direction",
    "count",
    "observed_s",
    "frames",
    "occupancy_mean",
    "occupancy_peak",
]


@pytest.fixture()
def state(tmp_path: Path) -> Path:
    """Two hours of 5 min bins on device 'cam': a line counting 1..24 cars per bin (the busiest
    hour is the second), a zone; the camera is dead from 45 to 60 min (no frames)."""
    rec = IntervalRecorder(HistoryStore(tmp_path / "history-cam.sqlite", "cam", "normal"), 300, gap_s=15.0)
    rec.start(T0)
    for k in range(24):
        t0 = T0 + 300 * k
        if 9 <= k < 12:
            continue
        for j in range(k + 1):
            rec.count(KeyInfo("L", "line", "car", "in"), t0 + 1 + j)
        rec.count(KeyInfo("Z", "zone", "car", "entered"), t0 + 2)
        for s in range(0, 300, 10):  # a frame every 10 s (gap_s 15: all of it observed)
            rec.frame(t0 + s)
    rec.tick(T0 + 7300)
    rec.store.close()
    other = IntervalRecorder(HistoryStore(tmp_path / "history-gate.sqlite", "gate", "normal"), 900, gap_s=5.0)
    other.start(T0)
    other.count(KeyInfo("G", "line", "bus", "out"), T0 + 10)
    other.frame(T0 + 10)
    other.store.close()
    return tmp_path


def _report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["report", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_csv_rows_per_bin_counter_class_direction(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _report(capsys, "--state", str(state), "--device", "cam", "--from", iso(T0), "--to", iso(T0 + 7200))
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == COLUMNS
    line = [r for r in rows if r["counter"] == "L"]
    assert len(line) == 8 and {r["bin_end"] for r in line[:1]} == {iso(T0 + 900)}  # 2 h of 15 min bins
    # each 15 min bin holds three 5 min bins: counts 1+2+3, 4+5+6, 7+8+9, then the dead quarter, ...
    assert [int(r["count"]) for r in line] == [6, 15, 24, 0, 42, 51, 60, 69]
    assert [float(r["observed_s"]) for r in line][2:4] == [900.0 - 10.0, 0.0]  # dead from the last frame at 44:50
    zone = [r for r in rows if r["counter"] == "Z"]
    assert zone[0]["occupancy_peak"] != "" and line[0]["occupancy_peak"] == ""
    assert f"peak hour cam/L: {iso(T0 + 3600)} .. {iso(T0 + 7200)}: {sum(range(13, 25))}" in err


def test_json_and_markdown_carry_the_peak_hour(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _report(
        capsys,
        "--state",
        str(state),
        "--device",
        "cam",
        "--bin",
        "60m",
        "--format",
        "json",
        "--from",
        iso(T0),
        "--to",
        iso(T0 + 7200),
    )
    data = json.loads(out)
    assert rc == 0 and data["bin"] == "60m"
    hourly = [r["count"] for r in data["rows"] if r["counter"] == "L"]
    assert hourly == [sum(range(1, 10)), sum(range(13, 25))]
    peak = {p["counter"]: p for p in data["peak_hours"]}
    assert peak["L"]["count"] == sum(range(13, 25)) and peak["L"]["start"] == iso(T0 + 3600)  # the last hour is busiest
    assert peak["Z"]["count"] == 12  # zone: entries
    rc, out, _ = _report(capsys, "--state", str(state), "--format", "md", "--from", iso(T0), "--to", iso(T0 + 900))
    assert rc == 0 and "| bin_start | bin_end | device |" in out and "## Peak hour per counter" in out
    assert "| gate | G |" in out  # every device in the folder by default


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bin", "1m"], "multiple of them"),
        (["--bin", "7m"], "does not divide an hour"),
        (["--device", "nope"], "no history for nope"),
        (["--from", "2030-13-40"], "expected 2026-05-04"),
        (["--from", "2030-01-02", "--to", "2030-01-01"], "the range is empty"),
    ],
)
def test_refusals_exit_2(state: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    rc, _, err = _report(capsys, "--state", str(state), "--to", iso(T0 + 7200), *args)
    assert rc == 2 and message in err


def test_missing_or_empty_state_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _report(capsys, "--state", str(tmp_path / "nope"))
    assert rc == 2 and "no such folder" in err
    rc, _, err = _report(capsys, "--state", str(tmp_path))
    assert rc == 2 and "no history-*.sqlite" in err


def test_default_state_folder_is_state_directory(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    rc, out, _ = _report(capsys, "--device", "gate", "--format", "json", "--to", iso(T0 + 900))
    assert rc == 0 and [r["count"] for r in json.loads(out)["rows"]] == [1]

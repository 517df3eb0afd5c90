"""`edge report` over the devices' histories: rows per bin x counter x class x direction, peak hours.

Reads every ``history-<device>.sqlite`` in a state folder (read-only use; the runner may be writing
at the same time: SQLite WAL readers never block it).
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetally.errors import ConfigError
from edgetally.history.bins import HOUR_S, bin_start, format_bin, iso
from edgetally.history.rows import IntervalRow, merge, stored_rows
from edgetally.history.store import HistoryStore

COLUMNS = (
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
)


@dataclass(frozen=True)
class PeakHour:
    device: str
    counter: str
    start: int
    count: int
    observed_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "counter": self.counter,
            "start": iso(self.start),
            "end": iso(self.start + HOUR_S),
            "count": self.count,
            "observed_s": round(self.observed_s, 1),
        }


@dataclass
class Report:
    bin_s: int
    start: int
    end: int
    rows: list[IntervalRow]
    peaks: list[PeakHour]

    def to_json(self) -> dict[str, Any]:
        return {
            "bin": format_bin(self.bin_s),
            "from": iso(self.start),
            "to": iso(self.end),
            "rows": [_row(r) for r in self.rows],
            "peak_hours": [p.to_json() for p in self.peaks],
        }


def history_files(state: Path) -> dict[str, Path]:
    """device -> history file in ``state``."""
    if not state.is_dir():
        raise ConfigError(
            f"--state {state}: no such folder (the runner keeps its history in $STATE_DIRECTORY "
            "or ~/.local/state/edgetally)"
        )
    return {p.stem.removeprefix("history-"): p for p in sorted(state.glob("history-*.sqlite"))}


def build_report(
    state: Path, bin_s: int, start: float | None, end: float | None, devices: tuple[str, ...] = ()
) -> Report:
    files = history_files(state)
    if not files:
        raise ConfigError(f"--state {state}: no history-*.sqlite here (has the runner counted with intervals on?)")
    unknown = [d for d in devices if d not in files]
    if unknown:
        raise ConfigError(f"--device: no history for {', '.join(unknown)} in {state}; found: {', '.join(files)}")
    stores = [HistoryStore.open_readonly(files[d]) for d in (devices or tuple(files))]
    try:
        firsts = [b[0].start for b in (s.bins() for s in stores) if b]
        lo = int(start) if start is not None else min(firsts, default=int(time.time()))
        hi = int(end) if end is not None else int(time.time())
        if hi <= lo:
            raise ConfigError(f"--from/--to: the range is empty ({iso(lo)} .. {iso(hi)})")
        rows: list[IntervalRow] = []
        peaks: list[PeakHour] = []
        for store in stores:
            # Stored bins that start before the first report bin are left out, so start at its edge.
            fine = stored_rows(store, bin_start(lo, bin_s), hi)
            try:
                rows += merge(fine, bin_s, lo, hi, store.device, store.keys())
            except ValueError as exc:
                raise ConfigError(f"{store.device}: {exc}") from None
            peaks += peak_hours(fine, store.device)
        return Report(bin_s, bin_start(lo, bin_s), hi, rows, peaks)
    finally:
        for store in stores:
            store.close()


def peak_hour_weight(row: IntervalRow) -> int:
    """What a peak hour counts: line crossings both ways, zone entries, decided movements."""
    if row.kind == "zone":
        return row.count if row.direction == "entered" else 0
    return row.count


def peak_hours(rows: list[IntervalRow], device: str) -> list[PeakHour]:
    """Per counter, the 60 minutes (starting on a stored bin) with the most counts."""
    per: dict[str, dict[int, tuple[int, float]]] = {}
    for r in rows:
        bins = per.setdefault(r.counter, {})
        n, _ = bins.get(r.start, (0, 0.0))
        bins[r.start] = (n + peak_hour_weight(r), r.observed_s)
    out = []
    for counter, bins in sorted(per.items()):
        starts = sorted(bins)
        best: PeakHour | None = None
        for s in starts:
            inside = [t for t in starts if s <= t < s + HOUR_S]
            count = sum(bins[t][0] for t in inside)
            if best is None or count > best.count:
                best = PeakHour(device, counter, s, count, sum(bins[t][1] for t in inside))
        if best is not None and best.count > 0:
            out.append(best)
    return out


def _row(r: IntervalRow) -> dict[str, Any]:
    out = r.to_json()
    return {k: out.get(k) for k in COLUMNS} | {"kind": r.kind}


def format_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in report.rows:
        row = _row(r)
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return buf.getvalue()


def format_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=1) + "\n"


def format_md(report: Report) -> str:
    lines = [
        f"# Counts per {format_bin(report.bin_s)}, {iso(report.start)} .. {iso(report.end)}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in report.rows:
        row = _row(r)
        lines.append("| " + " | ".join("" if row[c] is None else str(row[c]) for c in COLUMNS) + " |")
    lines += [
        "",
        "## Peak hour per counter",
        "",
        "| device | counter | start | end | count | observed_s |",
        "|---|---|---|---|---|---|",
    ]
    for p in report.peaks:
        j = p.to_json()
        lines.append(
            f"| {j['device']} | {j['counter']} | {j['start']} | {j['end']} | {j['count']} | {j['observed_s']} |"
        )
    if not report.peaks:
        lines.append("| (no counts in this range) | | | | | |")
    return "\n".join(lines) + "\n"


FORMATS = {"csv": format_csv, "json": format_json, "md": format_md}

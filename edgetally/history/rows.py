"""History -> rows: one per bin x counter x class x direction, zeros included. Shared by the interval
publisher (one closed bin) and `edge report` (a range, then merged into coarser bins)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from edgetally.history.bins import bin_start, bin_starts, iso
from edgetally.history.store import BinRow, HistoryStore, KeyInfo, Occupancy

MOVEMENT_SEPARATOR = "->"


@dataclass(frozen=True)
class IntervalRow:
    start: int
    bin_s: int
    device: str
    counter: str
    kind: str
    class_name: str
    direction: str
    count: int
    frames: int
    observed_s: float
    occ_s: float | None = None  # zones only: occupancy x seconds, summed over the observed time
    occupancy_peak: int | None = None

    @property
    def end(self) -> int:
        return self.start + self.bin_s

    @property
    def occupancy_mean(self) -> float | None:
        if self.occ_s is None:
            return None
        return self.occ_s / self.observed_s if self.observed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The published and reported form (``v`` added by the MQTT payload)."""
        out: dict[str, Any] = {
            "bin_start": iso(self.start),
            "bin_end": iso(self.end),
            "start_ts": self.start,
            "end_ts": self.end,
            "bin_s": self.bin_s,
            "device": self.device,
            "counter": self.counter,
            "kind": self.kind,
            "class": self.class_name,
            "direction": self.direction,
            "count": self.count,
            "frames": self.frames,
            "observed_s": round(self.observed_s, 2),
        }
        if self.kind == "zone":
            out["occupancy_mean"] = round(self.occupancy_mean or 0.0, 3)
            out["occupancy_peak"] = self.occupancy_peak or 0
        if self.kind == "movement":
            origin, _, destination = self.direction.partition(MOVEMENT_SEPARATOR)
            out["origin"], out["destination"] = origin, destination
        return out


def rows_for_bin(
    bin_row: BinRow,
    keys: list[KeyInfo],
    counts: dict[tuple[str, str, str], int],
    occupancy: dict[tuple[str, str], Occupancy],
    device: str,
) -> list[IntervalRow]:
    """Every known key for one bin; a key with no count reads 0."""
    rows = []
    for key in keys:
        occ = occupancy.get((key.counter, key.class_name)) if key.kind == "zone" else None
        rows.append(
            IntervalRow(
                bin_row.start,
                bin_row.bin_s,
                device,
                key.counter,
                key.kind,
                key.class_name,
                key.direction,
                counts.get((key.counter, key.class_name, key.direction), 0),
                bin_row.frames,
                bin_row.observed_s,
                (occ.occ_s if occ else 0.0) if key.kind == "zone" else None,
                (occ.peak if occ else 0) if key.kind == "zone" else None,
            )
        )
    return rows


def stored_rows(store: HistoryStore, start: int | None = None, end: int | None = None) -> list[IntervalRow]:
    """Rows of every stored bin starting in [start, end), at the resolution they were stored."""
    keys = store.keys()
    counts = store.counts(start, end)
    occupancy = store.occupancy(start, end)
    rows: list[IntervalRow] = []
    for b in store.bins(start, end):
        rows += rows_for_bin(
            b, keys, counts.get((b.start, b.bin_s), {}), occupancy.get((b.start, b.bin_s), {}), store.device
        )
    return rows


def merge(
    rows: list[IntervalRow], bin_s: int, start: int, end: int, device: str, keys: list[KeyInfo]
) -> list[IntervalRow]:
    """Rows in ``bin_s`` bins covering [start, end): stored bins summed into the report bin that holds
    them (counts, frames, observed seconds and occupancy-seconds add up; peaks take the max). A report
    bin the device never saw reads 0 with 0 s observed, so a gap shows as a gap.

    Raises ValueError when a stored bin is longer than ``bin_s`` or does not fit in it."""
    coarse = [r for r in rows if bin_s % r.bin_s or r.bin_s > bin_s]
    if coarse:
        lengths = sorted({r.bin_s for r in coarse})
        raise ValueError(
            f"--bin {bin_s}s: the history holds bins of {', '.join(f'{b}s' for b in lengths)} in this "
            "range; ask for a bin that is a multiple of them"
        )
    merged: dict[tuple[int, str, str, str], IntervalRow] = {}
    seen_bins: dict[int, dict[tuple[int, int], tuple[int, float]]] = {}
    for r in rows:
        target = bin_start(r.start, bin_s)
        seen_bins.setdefault(target, {})[(r.start, r.bin_s)] = (r.frames, r.observed_s)
        k = (target, r.counter, r.class_name, r.direction)
        old = merged.get(k)
        merged[k] = replace(r, start=target, bin_s=bin_s) if old is None else _add(old, r)
    out = []
    for s in bin_starts(bin_start(start, bin_s), end, bin_s):
        parts = seen_bins.get(s, {})
        frames, observed = sum(f for f, _ in parts.values()), sum(o for _, o in parts.values())
        for key in keys:
            row = merged.get((s, key.counter, key.class_name, key.direction))
            if row is None:
                zone = key.kind == "zone"
                row = IntervalRow(
                    s,
                    bin_s,
                    device,
                    key.counter,
                    key.kind,
                    key.class_name,
                    key.direction,
                    0,
                    0,
                    0.0,
                    0.0 if zone else None,
                    0 if zone else None,
                )
            out.append(replace(row, frames=frames, observed_s=observed))
    return out


def _add(a: IntervalRow, b: IntervalRow) -> IntervalRow:
    occ_s = None if a.occ_s is None else a.occ_s + (b.occ_s or 0.0)
    peak = None if a.occupancy_peak is None else max(a.occupancy_peak, b.occupancy_peak or 0)
    return replace(a, count=a.count + b.count, occ_s=occ_s, occupancy_peak=peak)


def row_dicts(rows: list[IntervalRow]) -> list[dict[str, Any]]:
    return [r.to_json() for r in rows]


__all__ = ["IntervalRow", "merge", "row_dicts", "rows_for_bin", "stored_rows"]

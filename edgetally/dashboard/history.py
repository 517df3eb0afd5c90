"""The device page's data: interval rows received over MQTT -> bars per bin per counter and the OD
matrix of each junction. Pure functions (the page only draws what this returns)."""

from __future__ import annotations

from typing import Any

from edgetally.counting.movements import UNKNOWN, split_movement


def _weight(row: dict[str, Any]) -> int:
    """A bar counts line crossings both ways, zone entries and decided movements."""
    if row.get("kind") == "zone" and row.get("direction") != "entered":
        return 0
    return int(row.get("count", 0))


def history_view(rows: list[dict[str, Any]], classes: set[str] | None = None) -> dict[str, Any]:
    """``rows``: interval payloads (``IntervalRow.to_json``). ``classes``: only these (None = all).

    Returns ``bins`` (start, end, observed_s, frames), ``counters`` (per counter: kind and per bin
    the total and per class counts) and ``od`` (per junction: origins, destinations, cells)."""
    bins: dict[int, dict[str, Any]] = {}
    counters: dict[str, dict[str, Any]] = {}
    od: dict[str, dict[str, dict[str, int]]] = {}
    for r in rows:
        start = int(r["start_ts"])
        bins.setdefault(
            start,
            {
                "start": start,
                "end": int(r["end_ts"]),
                "bin_s": int(r["bin_s"]),
                "observed_s": float(r.get("observed_s", 0.0)),
                "frames": int(r.get("frames", 0)),
            },
        )
        if classes is not None and r.get("class") not in classes:
            continue
        c = counters.setdefault(r["counter"], {"kind": r.get("kind", "line"), "bins": {}})
        per = c["bins"].setdefault(start, {"total": 0, "classes": {}})
        per["total"] += _weight(r)
        per["classes"][r["class"]] = per["classes"].get(r["class"], 0) + _weight(r)
        if r.get("kind") == "movement" and r.get("count"):
            origin, destination = split_movement(str(r["direction"]))
            cells = od.setdefault(r["counter"], {})
            row = cells.setdefault(origin or UNKNOWN, {})
            row[destination or UNKNOWN] = row.get(destination or UNKNOWN, 0) + int(r["count"])
    starts = sorted(bins)
    return {
        "bins": [bins[s] for s in starts],
        "counters": {
            name: {
                "kind": c["kind"],
                "bins": [{"start": s, **c["bins"].get(s, {"total": 0, "classes": {}})} for s in starts],
            }
            for name, c in sorted(counters.items())
        },
        "od": {name: _matrix(cells) for name, cells in sorted(od.items())},
    }


def _matrix(cells: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Origins as rows, destinations as columns; the unknown end ("?") last on both axes."""

    def order(names: set[str]) -> list[str]:
        return sorted(n for n in names if n != UNKNOWN) + ([UNKNOWN] if UNKNOWN in names else [])

    origins = order(set(cells))
    destinations = order({d for row in cells.values() for d in row})
    return {
        "origins": origins,
        "destinations": destinations,
        "cells": cells,
        "total": sum(n for row in cells.values() for n in row.values()),
    }

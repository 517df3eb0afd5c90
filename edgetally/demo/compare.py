"""Counted vs ground truth: rows per class and direction, errors, and a printable table."""

from __future__ import annotations

from typing import Any

DIRECTIONS = ("in", "out")


def compare_counts(
    truth: dict[str, dict[str, int]], counted: dict[str, dict[str, int]], mqtt: dict[str, dict[str, int]] | None = None
) -> dict[str, Any]:
    """truth/counted/mqtt: class -> {"in": n, "out": m} for one counter.

    total_error_pct: |sum counted - sum truth| / sum truth (what a traffic survey reports);
    abs_error_pct: sum over class and direction of |counted - truth| / sum truth (stricter: a car
    counted as a truck is two errors here, none in the total).
    """
    classes = sorted(set(truth) | set(counted) | set(mqtt or {}))
    rows = []
    for cls in classes:
        for d in DIRECTIONS:
            t = int(truth.get(cls, {}).get(d, 0))
            c = int(counted.get(cls, {}).get(d, 0))
            row = {"class": cls, "dir": d, "truth": t, "counted": c, "error": c - t}
            if mqtt is not None:
                row["mqtt"] = int(mqtt.get(cls, {}).get(d, 0))
            rows.append(row)
    t_sum = sum(r["truth"] for r in rows)
    c_sum = sum(r["counted"] for r in rows)
    out: dict[str, Any] = {
        "rows": rows,
        "truth_total": t_sum,
        "counted_total": c_sum,
        "total_error_pct": round(100.0 * abs(c_sum - t_sum) / t_sum, 2) if t_sum else 0.0,
        "abs_error_pct": round(100.0 * sum(abs(r["error"]) for r in rows) / t_sum, 2) if t_sum else 0.0,
    }
    if mqtt is not None:
        out["mqtt_matches"] = all(r["mqtt"] == r["counted"] for r in rows)
    return out


def format_table(result: dict[str, Any]) -> str:
    """Fixed-width table: class, direction, truth, counted, (mqtt,) error; then the totals."""
    has_mqtt = "mqtt_matches" in result
    head = (
        f"{'class':<10} {'dir':<4} {'truth':>6} {'counted':>8}"
        + (f" {'mqtt':>6}" if has_mqtt else "")
        + f" {'error':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        if r["truth"] == 0 and r["counted"] == 0:
            continue
        mq = f" {r['mqtt']:>6}" if has_mqtt else ""
        lines.append(f"{r['class']:<10} {r['dir']:<4} {r['truth']:>6} {r['counted']:>8}{mq} {r['error']:>+6d}")
    lines.append("-" * len(head))
    t, c = result["truth_total"], result["counted_total"]
    mq = f" {'':>6}" if has_mqtt else ""
    lines.append(f"{'total':<10} {'':<4} {t:>6} {c:>8}{mq} {c - t:>+6d}")
    lines.append(
        f"total count error {result['total_error_pct']:.1f} %; per class and direction "
        f"{result['abs_error_pct']:.1f} % (sum of |error| / truth)"
    )
    if has_mqtt:
        lines.append(
            "MQTT counters as received by the dashboard bridge: "
            + ("identical to the runner's" if result["mqtt_matches"] else "DIFFERENT from the runner's")
        )
    return "\n".join(lines)

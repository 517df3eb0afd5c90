"""Markdown tables from the benchmark's JSON-able result."""

from __future__ import annotations

from typing import Any


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _cell(row: dict[str, Any] | None) -> list[str]:
    if row is None:
        return ["-", "-"]
    lo, hi = min(row["abs_error_phases"]), max(row["abs_error_phases"])
    spread = f" ({_pct(lo)}-{_pct(hi)})" if row["phases"] > 1 else ""
    return [_pct(row["abs_error"]) + spread, f"{100 * row['net_error']:+.1f}"]


def _find(rows: list[dict], **key: Any) -> dict | None:
    return next((r for r in rows if all(r[k] == v for k, v in key.items())), None)


def _keys(rows: list[dict[str, Any]], mode: str) -> list[tuple[str, float]]:
    return list(dict.fromkeys((r["dataset"], r["rate"]) for r in rows if r["mode"] == mode))


def _stacks(rows: list[dict[str, Any]], mode: str) -> list[str]:
    """The stacks with rows in this mode (``ideal`` has no detector-rate rows), in run order."""
    return list(dict.fromkeys(r["stack"] for r in rows if r["mode"] == mode))


def input_table(rows: list[dict[str, Any]]) -> str:
    stacks = _stacks(rows, "input")
    head = ["dataset", "input rate (fps fed)", "true"] + [
        f"{s} {c}" for s in stacks for c in ("abs % (phases)", "net %")
    ]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rate in _keys(rows, "input"):
        cells = [_find(rows, dataset=name, mode="input", rate=rate, stack=s) for s in stacks]
        first = next(c for c in cells if c is not None)
        out.append(
            "| "
            + " | ".join(
                [name, f"{rate:g} ({first['fps_fed']:g})", str(first["true"]), *[v for c in cells for v in _cell(c)]]
            )
            + " |"
        )
    return "\n".join(out)


def detect_table(rows: list[dict[str, Any]], infer_ms: dict[str, float]) -> str:
    stacks = _stacks(rows, "detect")
    head = (
        ["dataset", "detector /s (camera fps)", "true"]
        + [f"{s} + flow {c}" for s in stacks for c in ("abs % (phases)", "net %")]
        + ["flow ms/frame", "est. pipeline fps"]
    )
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rate in _keys(rows, "detect"):
        cells = [_find(rows, dataset=name, mode="detect", rate=rate, stack=s) for s in stacks]
        first = next(c for c in cells if c is not None)
        ours = cells[0] if stacks[0] == "ours" else None
        extra = [f"{ours['flow_ms_median']:.2f}", _fps(ours, infer_ms.get(name, 0.0))] if ours else ["-", "-"]
        out.append(
            "| "
            + " | ".join(
                [
                    name,
                    f"{rate:g} ({first['fps_fed']:g})",
                    str(first["true"]),
                    *[v for c in cells for v in _cell(c)],
                    *extra,
                ]
            )
            + " |"
        )
    return "\n".join(out)


def _fps(row: dict[str, Any], infer_ms: float) -> str:
    """Frames per second one core would sustain: detector share x its time + flow on the
    rest + tracker and counter on every frame (each measured on this machine)."""
    share = row["detected_share"]
    ms = share * infer_ms + (1 - share) * row["flow_ms_median"] + row["track_ms_per_frame"]
    return f"{1000.0 / ms:.0f}" if ms > 0 and infer_ms > 0 else "-"


def cost_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| objects | frame | flow ms (median / p90) | whole propagated frame ms (median / p90) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['objects']} | {r['size']} | {r['flow_ms_median']:.2f} / {r['flow_ms_p90']:.2f} | "
            f"{r['frame_ms_median']:.2f} / {r['frame_ms_p90']:.2f} |"
        )
    return "\n".join(out)


def render(result: dict[str, Any]) -> str:
    parts = []
    rows = result.get("rows", [])
    if any(r["mode"] == "input" for r in rows):
        parts += ["## Every k-th frame (the camera or decoder delivers fewer frames)", "", input_table(rows), ""]
    if any(r["mode"] == "detect" for r in rows):
        parts += [
            "## Every frame, detector at N per second, optical flow in between",
            "",
            detect_table(rows, result.get("infer_ms", {})),
            "",
        ]
    if result.get("cost"):
        parts += ["## Propagation cost (one thread, thread CPU time)", "", cost_table(result["cost"]), ""]
    if result.get("pipeline"):
        from benchmarks.frame_rates.pipeline import table

        parts += [
            "## edge run end to end (traffic_road.mp4, YOLOX-nano FP32, 1 inference thread)",
            "",
            table(result["pipeline"]),
            "",
        ]
    if result.get("visits"):
        from benchmarks.frame_rates.visits import table as visits_table

        parts += [
            "## People and bottles, lines and zones (edge run, YOLOX-nano FP32, 1 inference thread)",
            "",
            visits_table(result["visits"]),
            "",
        ]
    infer = ", ".join(f"{k} {v:.1f} ms" for k, v in result.get("infer_ms", {}).items())
    if infer:
        parts.append(f"Detector time per frame when the cache was made (this machine): {infer}.")
    parts.append(f"Elapsed {result.get('elapsed_s', 0):.0f} s.")
    return "\n".join(parts)

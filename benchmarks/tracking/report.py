"""Markdown rendering of a benchmark result (runner.run_benchmark's dict)."""

from __future__ import annotations

from typing import Any


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def accuracy_section(result: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["suite"],
            r["tracker"],
            _pct(r["hota"]),
            _pct(r["idf1"]),
            _pct(r["mota"]),
            str(r["idsw"]),
            _pct(r["assa"]),
            _pct(r["deta"]),
            f"{r['ms_per_frame']:.3f}",
        ]
        for r in result["accuracy"]
    ]
    header = ["suite", "tracker", "HOTA", "IDF1", "MOTA", "IDSW", "AssA", "DetA", "ms/frame"]
    timing = ", ".join(f"{k} {v:.3f} ms" for k, v in result["timing"].items())
    return [
        "## Accuracy (TrackEval) and tracker time",
        "",
        *_table(header, rows),
        "",
        f"Tracker time per frame over all suites: {timing}.",
        "",
    ]


def sort_section(result: dict[str, Any]) -> list[str]:
    sp = result["sort_published"]
    if not sp.get("sequences"):
        return []
    seqs = sp["sequences"]
    rows = [
        ["SORT published (devkit)", *[_pct(sp["published_mota"][s]) for s in seqs], _pct(sp["published_combined_mota"])]
    ]
    for name, m in sp["measured"].items():
        rows.append([name, *[_pct(m[s]) for s in seqs], _pct(m["combined"])])
    return [
        "## MOTA vs SORT's published MOT15 table (Faster R-CNN detections)",
        "",
        *_table(["tracker", *seqs, "combined"], rows),
        "",
    ]


def mpntrack_section(result: dict[str, Any]) -> list[str]:
    cc = result.get("mpntrack_crosscheck") or {}
    if not cc:
        return []
    te, tr = cc["trackeval"], cc.get("trackers_eval", {})
    rows = []
    for seq in tr:
        a = te[seq]
        b = tr[seq]
        rows.append(
            [
                seq,
                f"{_pct(a['hota'])} / {_pct(b['hota'])}",
                f"{_pct(a['mota'])} / {_pct(b['mota'])}",
                f"{_pct(a['idf1'])} / {_pct(b['idf1'])}",
                f"{a['idsw']} / {b['idsw']}",
            ]
        )
    c = te["combined"]
    rows.append(["combined (TrackEval)", _pct(c["hota"]), _pct(c["mota"]), _pct(c["idf1"]), str(c["idsw"])])
    return [
        "## Scoring cross-check: published MPNTrack output (TrackEval / `trackers.eval`)",
        "",
        *_table(["sequence", "HOTA", "MOTA", "IDF1", "IDSW"], rows),
        "",
    ]


def counting_section(result: dict[str, Any]) -> list[str]:
    cnt = result["counting"]
    rows = [
        [
            str(r["fps"]),
            r["tracker"],
            str(r["true"]),
            str(r["counted"]),
            _pct(r["abs_error_rate"]),
            f"{100 * r['net_error_rate']:+.1f}",
            _pct(r.get("h_abs_error_rate", 0.0)),
            _pct(r.get("v_abs_error_rate", 0.0)),
        ]
        for r in cnt["summary"]
    ]
    header = ["fps", "tracker", "true", "counted", "abs error %", "net error %", "horizontal abs %", "vertical abs %"]
    out = [
        "## Counting (MOT17 GT lines, LineCounter on tracker output)",
        "",
        *_table(header, rows),
        "",
        "`gt tracks`: the counter fed the ground-truth tracks (no tracker), the counter's own error. "
        "`true ids`: the counter fed the trackers' noisy detections with their true ids (perfect "
        "association, no smoothing, no false positives): what misses and box jitter cost without "
        "any association error.",
        "",
    ]
    return out + per_line_section(cnt["per_line"])


def per_line_section(per_line: list[dict[str, Any]], tracker: str = "ours") -> list[str]:
    keyed: dict[tuple[str, str, str], dict[int, int]] = {}
    truth: dict[tuple[str, str, str], int] = {}
    for r in per_line:
        if r["tracker"] != tracker:
            continue
        key = (r["sequence"], r["line"], r["direction"])
        keyed.setdefault(key, {})[r["fps"]] = r["counted"]
        truth[key] = r["true"]
    fps_list = sorted({f for v in keyed.values() for f in v}, reverse=True)
    rows = [[*key, str(truth[key]), *[str(keyed[key].get(f, "")) for f in fps_list]] for key in keyed]
    header = ["sequence", "line", "dir", "true", *[f"{tracker} @{f} fps" for f in fps_list]]
    return [f"### Per line and direction ({tracker})", "", *_table(header, rows), ""]


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Tracking and counting benchmark",
        "",
        f"config: {result['config']}",
        f"elapsed: {result['elapsed_s']} s",
        "",
    ]
    for section in (accuracy_section, sort_section, mpntrack_section, counting_section):
        lines += section(result)
    return "\n".join(lines)

"""Turning movements counted on the junction scene vs its exact truth.

The counting chain is the runner's: approach ``LineCounter``s (forget time = tracker buffer + 1 s, as
``pipeline.build_counters``) -> ``MovementCounter``. What feeds it is the choice:

- ``ids``: the exact boxes with the vehicles' true ids (no tracker): the movement logic alone;
- ``tracker``: the exact boxes as detections through the runner's ``Tracker``;
- ``noisy``: detections with box jitter and dropped frames (a ``NoiseSpec``) through the ``Tracker``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgetally.counting import LineCounter, MovementCounter
from edgetally.demo.junction import ARMS, JunctionScene, junction_lines
from edgetally.structures import CountEvent, Detections, Tracks
from edgetally.tracking import Tracker, TrackerConfig

MODES = ("ids", "tracker", "noisy")


@dataclass(frozen=True)
class NoiseSpec:
    jitter: float = 0.05  # box edge noise, fraction of the box size (std)
    drop: float = 0.1  # probability a vehicle is missed in a frame
    score: float = 0.8
    seed: int = 0


def _detections(fb: Any, noise: NoiseSpec | None, rng: np.random.Generator) -> Detections:
    boxes = fb.xyxy.astype(np.float64)
    keep = np.ones(len(boxes), bool)
    if noise is not None and len(boxes):
        size = np.repeat(boxes[:, 2:] - boxes[:, :2], 2, axis=0).reshape(-1, 4)
        boxes = boxes + rng.normal(0.0, noise.jitter, boxes.shape) * size
        keep = rng.random(len(boxes)) >= noise.drop
    score = noise.score if noise is not None else 0.9
    return Detections(boxes[keep].astype(np.float32), np.full(int(keep.sum()), score, np.float32), fb.class_ids[keep])


def count_movements(
    scene: JunctionScene, mode: str = "tracker", noise: NoiseSpec | None = None, tracker: TrackerConfig | None = None
) -> tuple[dict[str, dict[str, int]], list[CountEvent]]:
    """class -> movement -> n as counted, and every movement event."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    cfg = tracker or TrackerConfig()
    forget = cfg.track_buffer_s + 1.0
    labels = list(scene.labels)
    lines = [
        LineCounter(arm, ln[:2], ln[2:], labels, forget_after_s=forget)
        for arm, ln in junction_lines(scene.config).items()
    ]
    junction = MovementCounter("junction", ARMS, "in", forget)
    trk = Tracker(cfg) if mode != "ids" else None
    rng = np.random.default_rng(noise.seed if noise is not None else 0)
    events: list[CountEvent] = []
    for fb in scene.frames:
        ts = fb.index / scene.config.fps
        if trk is None:
            tracks = Tracks(fb.ids, fb.xyxy, np.full(len(fb.ids), 0.9, np.float32), fb.class_ids)
        else:
            tracks = trk.update(_detections(fb, noise if mode == "noisy" else None, rng), ts)
        crossings = [e for c in lines for e in c.update(tracks, fb.index, ts)]
        events += junction.update(crossings, tracks.ids.tolist(), ts)
    end = [e for c in lines for e in c.flush()]
    junction.observe(end)
    events += junction.flush()
    counts: dict[str, dict[str, int]] = {}
    for e in events:
        per = counts.setdefault(e.class_name, {})
        per[e.direction] = per.get(e.direction, 0) + 1
    return counts, events


def compare_movements(truth: dict[str, dict[str, int]], counted: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Per movement (all classes) and per class x movement: truth, counted, error; totals.

    abs_error_pct: sum over class x movement of |counted - truth| / all true movements."""

    def per_movement(d: dict[str, dict[str, int]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for per in d.values():
            for mv, n in per.items():
                out[mv] = out.get(mv, 0) + n
        return out

    t_mv, c_mv = per_movement(truth), per_movement(counted)
    rows = [
        {
            "movement": mv,
            "truth": t_mv.get(mv, 0),
            "counted": c_mv.get(mv, 0),
            "error": c_mv.get(mv, 0) - t_mv.get(mv, 0),
        }
        for mv in sorted(set(t_mv) | set(c_mv))
    ]
    cells = [
        (cls, mv)
        for cls in sorted(set(truth) | set(counted))
        for mv in sorted(set(truth.get(cls, {})) | set(counted.get(cls, {})))
    ]
    class_rows = [
        {"class": c, "movement": mv, "truth": truth.get(c, {}).get(mv, 0), "counted": counted.get(c, {}).get(mv, 0)}
        for c, mv in cells
    ]
    total = sum(t_mv.values())
    return {
        "rows": rows,
        "class_rows": class_rows,
        "truth_total": total,
        "counted_total": sum(c_mv.values()),
        "movement_abs_error_pct": round(100.0 * sum(abs(r["error"]) for r in rows) / total, 2) if total else 0.0,
        "abs_error_pct": round(100.0 * sum(abs(r["counted"] - r["truth"]) for r in class_rows) / total, 2)
        if total
        else 0.0,
        "exact_movements": sum(r["error"] == 0 for r in rows),
        "movements": len(rows),
    }


def format_movements(result: dict[str, Any]) -> str:
    lines = [f"{'movement':<14} {'truth':>6} {'counted':>8} {'error':>6}", "-" * 37]
    for r in result["rows"]:
        lines.append(f"{r['movement']:<14} {r['truth']:>6} {r['counted']:>8} {r['error']:>+6d}")
    lines.append("-" * 37)
    t, c = result["truth_total"], result["counted_total"]
    lines.append(f"{'total':<14} {t:>6} {c:>8} {c - t:>+6d}")
    lines.append(
        f"{result['exact_movements']}/{result['movements']} movements exact; sum |error| per movement "
        f"{result['movement_abs_error_pct']:.1f} %, per class x movement {result['abs_error_pct']:.1f} % of {t}"
    )
    return "\n".join(lines)

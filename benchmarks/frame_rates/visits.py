"""People and bottles through ``edge run`` at low rates: lines AND zones against the hand counts.

The counting tables are vehicles on lines. These two real clips add what they do not cover: zones
(entries and exits), people walking, and hands putting bottles down, at the rates a slow board
affords. Each setting (every frame, the detector at N per second with flow in between, every k-th
frame only) is one ``edge run --config`` with the YOLOX-nano FP32 artifact on one inference thread,
as in pipeline.py. Hand counts (tests/test_run_e2e.py checks them at full rate):

- people_one_by_one.mp4 (10 fps): 6 people, one at a time, each walks up to the table and leaves
  to the right: line ``exit`` (x=600) out 6, zone ``table`` entered 6, exited 6;
- bottles_table.mp4 (29.8 fps): 3 bottles on the table at the start, 4 put down, 4 taken away:
  zone ``table`` entered 7, exited 4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.frame_rates.clips import SHARED
from benchmarks.frame_rates.pipeline import edge_run, every_kth_source, settings


@dataclass(frozen=True)
class VisitClip:
    name: str
    video: Path
    fps: float
    classes: tuple[str, ...]
    truth: dict[str, dict[str, int]]  # counter -> direction -> hand count
    lines: dict[str, list[list[float]]] = field(default_factory=dict)
    zones: dict[str, list[list[float]]] = field(default_factory=dict)


CLIPS = (
    VisitClip(
        "people_one_by_one",
        SHARED / "videos" / "people_one_by_one.mp4",
        10.0,
        ("person",),
        {"exit": {"in": 0, "out": 6}, "table": {"entered": 6, "exited": 6}},
        lines={"exit": [[600, 0], [600, 432]]},
        zones={"table": [[330, 150], [560, 150], [560, 432], [330, 432]]},
    ),
    VisitClip(
        "bottles_table",
        SHARED / "videos" / "bottles_table.mp4",
        29.833,
        ("bottle",),
        {"table": {"entered": 7, "exited": 4}},
        zones={"table": [[0, 200], [640, 200], [640, 360], [0, 360]]},
    ),
)


def measure(
    artifact: Path,
    work: Path,
    input_rates: tuple[float, ...],
    detect_rates: tuple[float, ...],
    log: Callable[[str], None] = print,
) -> list[dict[str, object]]:
    rows = []
    for clip in CLIPS:
        for setting in settings(input_rates, detect_rates, clip.fps):
            if setting.input_every == 1 and setting.label.startswith("input"):
                continue  # a rate at or above the clip's own: the "every frame" row
            log(f"visits: {clip.name}, {setting.label}")
            source, fps = every_kth_source(setting.input_every, work, clip.video, clip.fps)
            config: dict[str, object] = {
                "model": str(artifact),
                "source": str(source),
                "threads": 1,
                "classes": list(clip.classes),
                "lines": [{"name": n, "points": p} for n, p in clip.lines.items()],
                "zones": [{"name": n, "polygon": p} for n, p in clip.zones.items()],
            }
            if setting.detect_fps is not None:
                config["detect_fps"] = setting.detect_fps
            if fps is not None:
                config["capture"] = {"fps": fps}
            summary, _ = edge_run(config, work)
            counted = {
                name: {d: sum(int(c.get(d, 0)) for c in summary["counts"].get(name, {}).values()) for d in truth}
                for name, truth in clip.truth.items()
            }
            rows.append({"clip": clip.name, "setting": setting.label, "counted": counted, "truth": clip.truth})
    return rows


def abs_error(row: dict) -> float:
    """sum |counted - true| / sum true over the clip's counters and directions."""
    truth, counted = row["truth"], row["counted"]
    true = sum(v for per in truth.values() for v in per.values())
    return sum(abs(counted[c][d] - truth[c][d]) for c in truth for d in truth[c]) / true


def table(rows: list[dict]) -> str:
    out = ["| clip | setting | counted (true) | abs % |", "|---|---|---|---|"]
    for r in rows:
        got = "; ".join(
            f"{c} " + " / ".join(f"{d} {n} ({r['truth'][c][d]})" for d, n in per.items())
            for c, per in r["counted"].items()
        )
        out.append(f"| {r['clip']} | {r['setting']} | {got} | {100 * abs_error(r):.1f} |")
    return "\n".join(out)

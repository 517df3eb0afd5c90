"""Exact ground truth of a synthetic scene: per-frame boxes and line crossings. numpy only.

Crossings follow the runner's line-counter rule (edgetally/counting/line.py), so a perfect detector and
tracker would reproduce them exactly: the anchor is the bottom-centre of the vehicle's box as seen
in the frame (clipped to it), ``s = (p2 - p1) x (anchor - p1)``; the side of a vehicle is sign(s)
(an anchor exactly on the line keeps the previous side); a side change between consecutive frames
is a crossing when the anchor's move meets the counting *segment*; negative -> positive = "in",
positive -> negative = "out". The crossing's frame is the first frame on the new side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.counting.geometry import anchor_points, crossing_param, signed_distance

LineLike = Sequence[float] | Sequence[Sequence[float]]


@dataclass(frozen=True)
class FrameBoxes:
    """Vehicles visible (at least partly inside the frame) in one frame.

    ids (N,) int64 vehicle ids; class_ids (N,) int64; xyxy (N, 4) float32 clipped to the frame;
    visibility (N,) float32: fraction of the vehicle's in-frame pixels not hidden by nearer
    vehicles or by the scene's tree and pole.
    """

    index: int
    ids: np.ndarray
    class_ids: np.ndarray
    xyxy: np.ndarray
    visibility: np.ndarray


@dataclass(frozen=True)
class Crossing:
    frame: int
    class_name: str
    direction: str  # "in" | "out"
    vehicle_id: int


def parse_line(line: LineLike) -> tuple[np.ndarray, np.ndarray]:
    """(x1, y1, x2, y2), ((x1, y1), (x2, y2)) or "x1,y1,x2,y2" -> (p1, p2) float64 arrays."""
    if isinstance(line, str):
        line = [float(v) for v in line.split(",")]
    flat = np.asarray(line, dtype=np.float64).reshape(-1)
    if flat.shape != (4,):
        raise ValueError(f"line: expected 4 numbers x1,y1,x2,y2, got {line!r}")
    p1, p2 = flat[:2], flat[2:]
    if np.allclose(p1, p2):
        raise ValueError(f"line: p1 and p2 must differ, got {line!r}")
    return p1, p2


@dataclass(frozen=True)
class SceneTruth:
    """Everything true about one rendered scene."""

    labels: tuple[str, ...]
    width: int
    height: int
    fps: float
    seed: int
    frames: tuple[FrameBoxes, ...]
    vehicle_classes: dict[int, int]  # vehicle id -> class id

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def trajectories(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """vehicle id -> (frame indices (T,), xyxy (T, 4)), in frame order."""
        per: dict[int, tuple[list[int], list[np.ndarray]]] = {}
        for fb in self.frames:
            for vid, box in zip(fb.ids.tolist(), fb.xyxy):
                frames, boxes = per.setdefault(vid, ([], []))
                frames.append(fb.index)
                boxes.append(box)
        return {v: (np.asarray(f, np.int64), np.asarray(b, np.float64)) for v, (f, b) in per.items()}

    def crossings(self, line: LineLike) -> list[Crossing]:
        """Every crossing of ``line`` by any vehicle, sorted by (frame, vehicle id)."""
        p1, p2 = parse_line(line)
        out: list[Crossing] = []
        for vid, (frames, boxes) in self.trajectories().items():
            name = self.labels[self.vehicle_classes[vid]]
            for frame, direction in track_crossings(frames, boxes, p1, p2):
                out.append(Crossing(frame, name, direction, vid))
        return sorted(out, key=lambda c: (c.frame, c.vehicle_id))

    def counts(self, line: LineLike) -> dict[str, dict[str, int]]:
        """class -> {"in": n, "out": m} for every class of the scene (zeros included)."""
        counts = {name: {"in": 0, "out": 0} for name in self.labels}
        for c in self.crossings(line):
            counts[c.class_name][c.direction] += 1
        return counts

    def to_json(self, line: LineLike, name: str = "L") -> dict[str, Any]:
        p1, p2 = parse_line(line)
        crossings = self.crossings(line)
        counts = self.counts(line)
        return {
            "seed": self.seed,
            "fps": self.fps,
            "frames": self.num_frames,
            "width": self.width,
            "height": self.height,
            "labels": list(self.labels),
            "line": {"name": name, "p1": p1.tolist(), "p2": p2.tolist()},
            "counts": counts,
            "total": {d: sum(c[d] for c in counts.values()) for d in ("in", "out")},
            "crossings": [
                {"frame": c.frame, "class": c.class_name, "direction": c.direction, "vehicle_id": c.vehicle_id}
                for c in crossings
            ],
        }

    def write_truth_json(self, path: Path, line: LineLike, name: str = "L") -> Path:
        """Counts per class and direction (and every crossing) for ``line``, as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_json(line, name), indent=1) + "\n")
        return path


def track_crossings(frames: np.ndarray, boxes: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> list[tuple[int, str]]:
    """(frame, direction) of each crossing of one vehicle's anchor path. A gap in the frames
    (never happens for a vehicle that stays in view) would still be treated as one move."""
    points = anchor_points(boxes, "bottom_center")
    s = signed_distance(points, p1, p2)
    events: list[tuple[int, str]] = []
    side = 0
    for i in range(len(points)):
        now = int(np.sign(s[i])) or side
        if side != 0 and now != side:
            t = crossing_param(points[i - 1 : i], points[i : i + 1], s[i - 1 : i], s[i : i + 1], p1, p2)[0]
            if 0.0 <= t <= 1.0:
                events.append((int(frames[i]), "in" if now > 0 else "out"))
        side = now
    return events

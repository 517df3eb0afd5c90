"""Drawing for people: boxes, track ids, counting lines, running counts, a coordinate grid.

Used by ``edge run --annotate OUT.mp4``, ``edge snapshot`` and the MQTT snapshot publisher. cv2
lives here on purpose: counting and tracking stay free of it (DESIGN.md section 2).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.hooks import Hook, RunContext
from edgetally.structures import Detections, FrameResult, Tracks

log = logging.getLogger(__name__)

# BGR colours, one per class id (cycled), chosen to stay readable on grey roads and green grass.
_PALETTE = ((60, 200, 255), (255, 120, 40), (80, 80, 255), (60, 220, 60), (255, 60, 220), (0, 215, 255))
LINE_COLOUR = (0, 255, 255)
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class DrawLine:
    """A named directed counting line in source pixels."""

    name: str
    p1: tuple[float, float]
    p2: tuple[float, float]


def lines_of(context: RunContext) -> list[DrawLine]:
    """The run's counting lines, as drawn."""
    return [DrawLine(c.name, c.points[0], c.points[1]) for c in context.counters if c.kind == "line"]


def class_colour(class_id: int) -> tuple[int, int, int]:
    return _PALETTE[int(class_id) % len(_PALETTE)]


def _ipt(p: Sequence[float]) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def _label(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int], scale: float = 0.45) -> None:
    """Text on a filled box so it reads on any background."""
    import cv2

    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = max(0, org[0]), max(h + base, org[1])
    cv2.rectangle(img, (x, y - h - base), (x + w + 2, y + 1), colour, -1)
    cv2.putText(img, text, (x + 1, y - base + 1), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _label_centred(img: np.ndarray, text: str, centre: np.ndarray, colour: tuple[int, int, int]) -> None:
    import cv2

    (w, h), _base = cv2.getTextSize(text, _FONT, 0.45, 1)
    _label(img, text, (int(round(centre[0] - w / 2)), int(round(centre[1] + h / 2))), colour)


def _arrowhead(img: np.ndarray, tip: np.ndarray, unit: np.ndarray, size: float = 14.0) -> None:
    """A filled triangle pointing along ``unit`` with its point at ``tip``."""
    import cv2

    normal = np.array([-unit[1], unit[0]])
    back = tip - size * unit
    points = np.array([tip, back + 0.5 * size * normal, back - 0.5 * size * normal])
    cv2.fillConvexPoly(img, np.round(points).astype(np.int32), LINE_COLOUR, cv2.LINE_AA)


def draw_lines(img: np.ndarray, lines: Sequence[DrawLine]) -> None:
    """Each line with its direction (an arrowhead on the line, three quarters of the way along its
    visible part), its name at the start, and its sides: 'in' (a tick) is the right-hand side of
    p1 -> p2, where an object's anchor moves to count in."""
    import cv2

    h, w = img.shape[:2]
    for ln in lines:
        p1, p2 = _ipt(ln.p1), _ipt(ln.p2)
        cv2.line(img, p1, p2, LINE_COLOUR, 2, cv2.LINE_AA)
        d = np.subtract(ln.p2, ln.p1).astype(np.float64)
        length = float(np.hypot(*d))
        if length < 1.0:
            continue
        unit = d / length
        visible, a, b = cv2.clipLine((0, 0, w, h), p1, p2)
        if visible:
            _arrowhead(img, np.add(a, 0.75 * np.subtract(b, a)), unit)
        mid = np.add(a, b) / 2.0 if visible else (np.add(ln.p1, ln.p2) / 2.0)
        right = np.array([-unit[1], unit[0]])
        cv2.arrowedLine(img, _ipt(mid), _ipt(mid + 18 * right), LINE_COLOUR, 2, cv2.LINE_AA, tipLength=0.4)
        _label_centred(img, "in", mid + 32 * right, LINE_COLOUR)
        _label_centred(img, "out", mid - 24 * right, LINE_COLOUR)
        _label(img, ln.name, (p1[0] + 4, p1[1] + 16), LINE_COLOUR)


def draw_tracks(img: np.ndarray, tracks: Tracks, labels: Sequence[str]) -> None:
    import cv2

    for tid, box, cid in zip(tracks.ids, tracks.xyxy, tracks.class_ids):
        colour = class_colour(int(cid))
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
        name = labels[int(cid)] if 0 <= int(cid) < len(labels) else str(int(cid))
        _label(img, f"#{int(tid)} {name}", (x1, y1 - 2), colour)


def draw_detections(img: np.ndarray, detections: Detections, labels: Sequence[str]) -> None:
    """Untracked boxes (``edge snapshot``): thin, with the score."""
    import cv2

    for box, score, cid in zip(detections.xyxy, detections.scores, detections.class_ids):
        colour = class_colour(int(cid))
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, 1)
        name = labels[int(cid)] if 0 <= int(cid) < len(labels) else str(int(cid))
        _label(img, f"{name} {float(score):.2f}", (x1, y1 - 2), colour, 0.4)


def count_lines(counts: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """counter -> class -> dir -> n as short text rows: 'L car in 3 out 5'."""
    rows = []
    for counter, per_class in sorted(counts.items()):
        for cls, dirs in sorted(per_class.items()):
            rows.append(f"{counter} {cls}: " + "  ".join(f"{d} {n}" for d, n in sorted(dirs.items())))
    return rows


def draw_counts(img: np.ndarray, counts: dict[str, dict[str, dict[str, int]]]) -> None:
    """Running counts in the top-left corner, on a translucent panel."""
    import cv2

    rows = count_lines(counts) or ["no counts yet"]
    h = 16 * len(rows) + 8
    w = min(img.shape[1], 10 + 8 * max(len(r) for r in rows))
    panel = img[:h, :w]
    panel[:] = (panel * 0.4).astype(np.uint8)
    for i, row in enumerate(rows):
        cv2.putText(img, row, (5, 18 + 16 * i), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def draw_grid(img: np.ndarray, step: int = 40) -> None:
    """A pixel-coordinate grid (labels every other line) to read line coordinates off the picture."""
    import cv2

    h, w = img.shape[:2]
    overlay = img.copy()
    for x in range(0, w, step):
        cv2.line(overlay, (x, 0), (x, h - 1), (255, 255, 255), 1)
    for y in range(0, h, step):
        cv2.line(overlay, (0, y), (w - 1, y), (255, 255, 255), 1)
    img[:] = cv2.addWeighted(overlay, 0.35, img, 0.65, 0)
    for x in range(0, w, 2 * step):
        cv2.putText(img, str(x), (x + 2, 12), _FONT, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    for y in range(2 * step, h, 2 * step):
        cv2.putText(img, str(y), (2, y - 2), _FONT, 0.35, (255, 255, 255), 1, cv2.LINE_AA)


def annotate(
    image: np.ndarray,
    tracks: Tracks | None,
    labels: Sequence[str],
    lines: Sequence[DrawLine],
    counts: dict[str, dict[str, dict[str, int]]] | None = None,
) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) BGR with tracks, lines and (optionally) counts drawn."""
    img = np.ascontiguousarray(image).copy()
    if tracks is not None:
        draw_tracks(img, tracks, labels)
    draw_lines(img, lines)
    if counts is not None:
        draw_counts(img, counts)
    return img


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class VideoAnnotator(Hook):
    """Hook for ``edge run --annotate OUT.mp4``: one annotated frame per processed frame."""

    def __init__(self, out: Path, fps: float | None = None) -> None:
        self.out = Path(out)
        self._fps = fps
        self._writer: Any = None
        self._context: RunContext | None = None
        self.frames = 0

    def open(self, context: RunContext) -> None:
        self._context = context

    def reconfigured(self, context: RunContext) -> None:
        self._context = context

    def frame(self, result: FrameResult) -> None:
        context = self._context
        if context is None:
            return
        labels = context.model.labels if context.model is not None else ()
        img = annotate(result.frame.image, result.tracks, labels, lines_of(context), context.totals.values)
        if self._writer is None:
            self._writer = self._open(img.shape[1], img.shape[0], context.source_fps)
        self._writer.write(img)
        self.frames += 1

    def _open(self, width: int, height: int, source_fps: float | None) -> Any:
        import cv2

        fps = self._fps or float(source_fps or 0) or 15.0
        self.out.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(self.out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"--annotate: cannot open a video writer for {self.out}")
        log.info("writing the annotated video to %s (%dx%d, %.1f fps)", self.out, width, height, fps)
        return writer

    def close(self, final_state: str = "stopped") -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def snapshot_image(
    image: np.ndarray,
    lines: Sequence[DrawLine],
    detections: Detections | None = None,
    labels: Sequence[str] = (),
    grid: int = 40,
) -> np.ndarray:
    """``edge snapshot``: grid + lines (+ detections) on one frame."""
    img = np.ascontiguousarray(image).copy()
    if grid > 0:
        draw_grid(img, grid)
    if detections is not None:
        draw_detections(img, detections, labels)
    draw_lines(img, lines)
    return img

"""Typed values passed between pipeline stages. numpy only: no cv2, no runtime.

Every array is validated on construction so a shape bug fails where it is made, with
"expected vs got", rather than three stages later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def _check(name: str, arr: np.ndarray, ndim: int, cols: int | None, rows: int | None) -> None:
    if arr.ndim != ndim or (cols is not None and arr.shape[1] != cols) or (rows is not None and arr.shape[0] != rows):
        want = f"({rows if rows is not None else 'N'}{', ' + str(cols) if ndim == 2 else ''})"
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")


@dataclass(frozen=True)
class Frame:
    """One decoded camera frame.

    image: (H, W, 3) uint8, BGR (OpenCV order).
    index: 0-based position in the source's decode order.
    timestamp: seconds; from the file's timeline for files, monotonic clock for live sources.
    """

    image: np.ndarray
    index: int
    timestamp: float
    source_name: str = ""

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True)
class Detections:
    """Detector output for one frame, in source-frame pixels.

    xyxy: (N, 4) float32; scores: (N,) float32; class_ids: (N,) int64.
    """

    xyxy: FloatArray
    scores: FloatArray
    class_ids: IntArray

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        scores = np.asarray(self.scores, dtype=np.float32)
        class_ids = np.asarray(self.class_ids, dtype=np.int64)
        _check("Detections.xyxy", xyxy, 2, 4, None)
        n = xyxy.shape[0]
        _check("Detections.scores", scores, 1, None, n)
        _check("Detections.class_ids", class_ids, 1, None, n)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def select(self, mask: np.ndarray) -> Detections:
        """Subset by boolean mask or index array. The parts are already validated arrays, so
        the subset skips __post_init__ (the tracker calls this ~8 times per frame)."""
        out = object.__new__(Detections)
        object.__setattr__(out, "xyxy", self.xyxy[mask])
        object.__setattr__(out, "scores", self.scores[mask])
        object.__setattr__(out, "class_ids", self.class_ids[mask])
        return out


@dataclass(frozen=True)
class Tracks:
    """Confirmed, currently visible tracks after a tracker update.

    ids: (N,) int64, unique per tracker instance; xyxy: (N, 4) float32 (filtered box);
    scores: (N,) float32 (score of the matched detection); class_ids: (N,) int64.
    first_xyxy: (N, 4) float32 box of the detection each track started from, before it was
    confirmed (for a slow detector, moved back one detection interval at the track's first
    measured speed: where the object was when the detector missed it), or None when the
    producer does not know. A line counter takes a new track's side from it: at a low frame
    rate a fast object can be confirmed already past the line.
    """

    ids: IntArray
    xyxy: FloatArray
    scores: FloatArray
    class_ids: IntArray
    first_xyxy: FloatArray | None = None

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, dtype=np.int64)
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32)
        class_ids = np.asarray(self.class_ids, dtype=np.int64)
        _check("Tracks.ids", ids, 1, None, None)
        n = ids.shape[0]
        _check("Tracks.xyxy", xyxy, 2, 4, n)
        _check("Tracks.scores", scores, 1, None, n)
        _check("Tracks.class_ids", class_ids, 1, None, n)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)
        if self.first_xyxy is not None:
            first = np.asarray(self.first_xyxy, dtype=np.float32).reshape(-1, 4)
            _check("Tracks.first_xyxy", first, 2, 4, n)
            object.__setattr__(self, "first_xyxy", first)

    @classmethod
    def empty(cls) -> Tracks:
        return cls(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.ids.shape[0])


# Lines: in/out; zones: entered/exited; movements (counting/movements.py): "ORIGIN->DESTINATION".
Direction = str


@dataclass(frozen=True)
class CountEvent:
    """One counted crossing (line), entry/exit (zone) or turning movement (junction)."""

    counter: str
    kind: Literal["line", "zone", "movement"]
    class_name: str
    direction: Direction
    track_id: int
    frame_index: int
    timestamp: float
    score: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "counter": self.counter,
            "kind": self.kind,
            "class": self.class_name,
            "direction": self.direction,
            "track_id": int(self.track_id),
            "frame": int(self.frame_index),
            "timestamp": round(float(self.timestamp), 4),
            "score": round(float(self.score), 4),
        }


@dataclass
class CountTotals:
    """Cumulative counts: counter -> class -> direction -> n. Mutable, owned by the pipeline."""

    values: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def add(self, event: CountEvent) -> int:
        """Apply one event; return the new cumulative value for its counter/class/direction."""
        per_class = self.values.setdefault(event.counter, {}).setdefault(event.class_name, {})
        per_class[event.direction] = per_class.get(event.direction, 0) + 1
        return per_class[event.direction]


@dataclass(frozen=True)
class FrameResult:
    """The outcome of one frame, handed to every sink and hook.

    detections: the detector's output for this frame (after the class filter), or None when the
        detector did not look at this frame (tracks then come from motion alone).
    tracks: the confirmed tracks after this frame; events: what the counters counted on it.
    frames: frames processed in this run so far, this one included.
    infer_ms: model inference time for this frame (None without detection).
    """

    frame: Frame
    detections: Detections | None
    tracks: Tracks
    events: tuple[CountEvent, ...]
    frames: int
    infer_ms: float | None = None

"""Raw model outputs -> Detections in source-image pixels, one decoder per output family.

A decoder is built once from the manifest (grids and shapes precomputed) and then called per
frame: ``decoder(outputs, letterbox) -> Detections``. Every family follows the same steps:
best class per anchor, drop anchors under the score threshold (cheap, before anything else),
decode only the survivors' boxes, NMS, cap, and map back through the letterbox.

Families:
- ``yolox``: raw head ``[1, A, 5 + nc]`` (x, y offsets, log w, log h, objectness, class
  probabilities), score = objectness x class probability, grid/stride decode done here.
- ``yolov8``: Ultralytics export ``[1, 4 + nc, A]`` (cx, cy, w, h in input pixels, class
  probabilities), no objectness.
- ``boxes_scores``: already-decoded ``boxes [1, N, 4]`` xyxy (input pixels or 0..1) and
  ``scores [1, N, nc]`` (or ``[1, N]`` plus ``class_ids [1, N]``), optional ``count``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from edgetally.artifact import Manifest
from edgetally.errors import ArtifactError
from edgetally.postprocess.nms import batched_nms
from edgetally.postprocess.shapes import role_indices, validate_output_shapes
from edgetally.structures import Detections

if TYPE_CHECKING:  # edgetally.preprocess imports cv2; postprocess must not (any object with to_source works)
    from edgetally.preprocess import Letterbox

__all__ = ["Decoder", "build_decoder", "make_grid", "validate_output_shapes"]

# Above this many candidates NMS would dominate the frame time; keep the best ones only.
MAX_NMS_CANDIDATES = 4096

Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]


class Decoder(ABC):
    """Base of all decoders: thresholds, NMS, cap and letterbox mapping; families add ``candidates``."""

    family: str = ""

    def __init__(self, manifest: Manifest, score_threshold: float | None = None, max_detections: int | None = None):
        spec = manifest.decoder
        self.score_threshold = float(spec.score_threshold if score_threshold is None else score_threshold)
        self.max_detections = int(spec.max_detections if max_detections is None else max_detections)
        self.nms_iou = float(spec.nms_iou)
        self.class_agnostic = bool(spec.class_agnostic_nms)
        self.labels: tuple[str, ...] = tuple(manifest.labels)
        self.input_height = manifest.input.height
        self.input_width = manifest.input.width
        self.output_shapes: tuple[tuple[int, ...], ...] = tuple(tuple(o.shape) for o in manifest.outputs)
        validate_output_shapes(manifest, self.output_shapes)

    def __call__(self, outputs: Sequence[np.ndarray], letterbox: Letterbox) -> Detections:
        """outputs: the runtime's float arrays in manifest order -> Detections in source pixels."""
        self._check(outputs)
        xyxy, scores, class_ids = self.candidates(outputs)
        if scores.shape[0] > MAX_NMS_CANDIDATES:
            top = np.argpartition(-scores, MAX_NMS_CANDIDATES - 1)[:MAX_NMS_CANDIDATES]
            xyxy, scores, class_ids = xyxy[top], scores[top], class_ids[top]
        keep = batched_nms(xyxy, scores, class_ids, self.nms_iou, self.class_agnostic, self.max_detections)
        boxes = np.array(xyxy[keep], dtype=np.float32)  # a fresh array: to_source works in place
        return Detections(letterbox.to_source(boxes), scores[keep], class_ids[keep])

    @abstractmethod
    def candidates(self, outputs: Sequence[np.ndarray]) -> Candidates:
        """-> (xyxy (K, 4) in input-tensor pixels, scores (K,), class_ids (K,)), all scores >= threshold."""

    def _check(self, outputs: Sequence[np.ndarray]) -> None:
        if len(outputs) != len(self.output_shapes) or any(
            tuple(o.shape) != s for o, s in zip(outputs, self.output_shapes)
        ):
            got = [list(o.shape) for o in outputs]
            raise ArtifactError(
                f"{self.family} decoder: the runtime returned outputs shaped {got}; "
                f"the manifest says {[list(s) for s in self.output_shapes]}"
            )


def make_grid(height: int, width: int, strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Anchor grid in the head's order -> (xy (A, 2) float32 cell indices, strides (A, 1) float32).

    Per stride, cells go row by row (y outer, x inner), strides in the given order (YOLOX's order).
    """
    grids, cell_strides = [], []
    for stride in strides:
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        cell_strides.append(np.full(rows * cols, stride))
    xy = np.concatenate(grids).astype(np.float32)
    return xy, np.concatenate(cell_strides).astype(np.float32)[:, None]


def _cxcywh_to_xyxy(cxcy: np.ndarray, wh: np.ndarray) -> np.ndarray:
    half = wh * np.float32(0.5)
    return np.concatenate([cxcy - half, cxcy + half], axis=1)


class YoloxDecoder(Decoder):
    """Raw YOLOX head: cx = (x + gx) * s, cy = (y + gy) * s, w = exp(w) * s, h = exp(h) * s."""

    family = "yolox"

    def __init__(self, manifest: Manifest, score_threshold: float | None = None, max_detections: int | None = None):
        super().__init__(manifest, score_threshold, max_detections)
        self._grid, self._strides = make_grid(self.input_height, self.input_width, manifest.decoder.strides)

    def candidates(self, outputs: Sequence[np.ndarray]) -> Candidates:
        head = np.asarray(outputs[0], dtype=np.float32)[0]
        objectness = head[:, 4]
        # Class probabilities are <= 1 (sigmoid in the head), so obj * cls >= t implies obj >= t:
        # filtering on the single objectness column first skips the class argmax for most anchors.
        rows = np.flatnonzero(objectness >= self.score_threshold)
        class_probs = head[rows, 5:]
        class_ids = class_probs.argmax(axis=1)
        scores = objectness[rows] * class_probs[np.arange(rows.shape[0]), class_ids]
        passed = scores >= self.score_threshold
        rows, class_ids, scores = rows[passed], class_ids[passed], scores[passed]
        strides = self._strides[rows]
        cxcy = (head[rows, 0:2] + self._grid[rows]) * strides
        wh = np.exp(head[rows, 2:4]) * strides
        return _cxcywh_to_xyxy(cxcy, wh), scores, class_ids.astype(np.int64)


class Yolov8Decoder(Decoder):
    """Ultralytics export [1, 4 + nc, A]: cx, cy, w, h in input pixels; score = best class probability."""

    family = "yolov8"

    def candidates(self, outputs: Sequence[np.ndarray]) -> Candidates:
        pred = np.asarray(outputs[0], dtype=np.float32)[0]
        class_probs = pred[4:]
        best = class_probs.max(axis=0)
        cols = np.flatnonzero(best >= self.score_threshold)
        class_ids = class_probs[:, cols].argmax(axis=0).astype(np.int64)
        box = pred[:4, cols].T
        return _cxcywh_to_xyxy(box[:, 0:2], box[:, 2:4]), best[cols], class_ids


class BoxesScoresDecoder(Decoder):
    """Decoded boxes [1, N, 4] xyxy + scores [1, N, nc] (or [1, N] + class_ids), optional count [1]."""

    family = "boxes_scores"

    def __init__(self, manifest: Manifest, score_threshold: float | None = None, max_detections: int | None = None):
        super().__init__(manifest, score_threshold, max_detections)
        self._roles = role_indices(manifest)
        w, h = float(self.input_width), float(self.input_height)
        scale = [w, h, w, h] if manifest.decoder.boxes_normalized else [1.0, 1.0, 1.0, 1.0]
        self._box_scale = np.asarray(scale, dtype=np.float32)

    def candidates(self, outputs: Sequence[np.ndarray]) -> Candidates:
        roles = self._roles
        boxes = np.asarray(outputs[roles["boxes"]], dtype=np.float32)[0]
        scores = np.asarray(outputs[roles["scores"]], dtype=np.float32)[0]
        if "count" in roles:
            # Models with NMS inside pad to a fixed N; only the first `count` rows are real.
            n = int(np.asarray(outputs[roles["count"]]).reshape(-1)[0])
            boxes, scores = boxes[:n], scores[:n]
        if scores.ndim == 2:
            best = scores.max(axis=1)
            rows = np.flatnonzero(best >= self.score_threshold)
            class_ids = scores[rows].argmax(axis=1).astype(np.int64)
            kept_scores = best[rows]
        else:
            rows = np.flatnonzero(scores >= self.score_threshold)
            class_ids = np.asarray(outputs[roles["class_ids"]]).reshape(-1)[rows].astype(np.int64)
            kept_scores = scores[rows]
        return boxes[rows] * self._box_scale, kept_scores, class_ids


_FAMILIES: dict[str, type[Decoder]] = {
    "yolox": YoloxDecoder,
    "yolov8": Yolov8Decoder,
    "boxes_scores": BoxesScoresDecoder,
}


def build_decoder(
    manifest: Manifest, score_threshold: float | None = None, max_detections: int | None = None
) -> Decoder:
    """The decoder for ``manifest.decoder.family``; thresholds default to the manifest's."""
    family = manifest.decoder.family
    if family not in _FAMILIES:
        raise ArtifactError(f"decoder family '{family}' is not known; known: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[family](manifest, score_threshold, max_detections)

"""The decoder base: raw model outputs -> Detections in source-image pixels.

A decoder is built once from the manifest (grids and shapes precomputed) and then called per
frame: ``decoder(outputs, letterbox) -> Detections``. Every family follows the same steps:
best class per anchor, drop anchors under the score threshold (cheap, before anything else),
decode only the survivors' boxes, NMS, cap, and map back through the letterbox. A family (one
module each: yolox, yolov8, boxes_scores) adds ``candidates``, the shape check of its outputs and
the preprocessing its models are trained with.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgetally.artifact import Manifest
from edgetally.errors import ArtifactError
from edgetally.postprocess.nms import batched_nms, contained_duplicates
from edgetally.postprocess.shapes import Shape
from edgetally.structures import Detections

if TYPE_CHECKING:  # edgetally.preprocess imports cv2; postprocess must not (any object with to_source works)
    from edgetally.preprocess import Letterbox

# Above this many candidates NMS would dominate the frame time; keep the best ones only.
MAX_NMS_CANDIDATES = 4096

Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]


class Decoder(ABC):
    """Base of all decoders: thresholds, NMS, cap and letterbox mapping; families add ``candidates``,
    ``check_shapes`` and ``input_defaults`` (the colour order, mean/std and letterbox their models
    are trained with: the converter's defaults for a manifest)."""

    family: ClassVar[str] = ""
    input_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, manifest: Manifest, score_threshold: float | None = None, max_detections: int | None = None):
        spec = manifest.decoder
        self.score_threshold = float(spec.score_threshold if score_threshold is None else score_threshold)
        self.max_detections = int(spec.max_detections if max_detections is None else max_detections)
        self.nms_iou = float(spec.nms_iou)
        self.class_agnostic = bool(spec.class_agnostic_nms)
        self.drop_contained = float(spec.drop_contained)
        self.labels: tuple[str, ...] = tuple(manifest.labels)
        self.input_height = manifest.input.height
        self.input_width = manifest.input.width
        self.output_shapes: tuple[tuple[int, ...], ...] = tuple(tuple(o.shape) for o in manifest.outputs)
        self.check_shapes(manifest, list(self.output_shapes))

    @classmethod
    @abstractmethod
    def check_shapes(cls, manifest: Manifest, shapes: list[Shape]) -> None:
        """Raise ArtifactError saying why ``shapes`` (one per manifest output) do not fit this family."""

    def __call__(self, outputs: Sequence[np.ndarray], letterbox: Letterbox) -> Detections:
        """outputs: the runtime's float arrays in manifest order -> Detections in source pixels."""
        self._check(outputs)
        xyxy, scores, class_ids = self.candidates(outputs)
        if scores.shape[0] > MAX_NMS_CANDIDATES:
            top = np.argpartition(-scores, MAX_NMS_CANDIDATES - 1)[:MAX_NMS_CANDIDATES]
            xyxy, scores, class_ids = xyxy[top], scores[top], class_ids[top]
        keep = batched_nms(xyxy, scores, class_ids, self.nms_iou, self.class_agnostic, self.max_detections)
        if self.drop_contained > 0.0 and keep.size > 1:
            keep = keep[contained_duplicates(xyxy[keep], scores[keep], self.drop_contained)]
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


def cxcywh_to_xyxy(cxcy: np.ndarray, wh: np.ndarray) -> np.ndarray:
    half = wh * np.float32(0.5)
    return np.concatenate([cxcy - half, cxcy + half], axis=1)

"""The raw YOLOX head: ``[1, A, 5 + nc]`` (x, y offsets, log w, log h, objectness, class
probabilities); score = objectness x class probability; the grid/stride decode is done here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from edgetally.artifact import Manifest
from edgetally.errors import ArtifactError
from edgetally.postprocess.decoders import (
    Candidates,
    Decoder,
    cxcywh_to_xyxy,
    make_grid,
)
from edgetally.postprocess.shapes import (
    Shape,
    anchor_count,
    check_labels,
    describe,
    single_output,
)


class YoloxDecoder(Decoder):
    """Raw YOLOX head: cx = (x + gx) * s, cy = (y + gy) * s, w = exp(w) * s, h = exp(h) * s."""

    family = "yolox"
    # YOLOX (Megvii) trains on BGR 0-255, no normalisation, image placed top-left, pad 114.
    input_defaults: ClassVar[dict[str, Any]] = {
        "color": "BGR",
        "mean": [0.0] * 3,
        "std": [1.0] * 3,
        "letterbox_align": "top-left",
        "pad_value": 114,
    }

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
        return cxcywh_to_xyxy(cxcy, wh), scores, class_ids.astype(np.int64)

    @classmethod
    def check_shapes(cls, manifest: Manifest, shapes: list[Shape]) -> None:
        shape, name = single_output(manifest, shapes, "[1, anchors, 5 + classes]")
        if len(shape) != 3 or shape[0] != 1 or shape[2] < 6:
            raise ArtifactError(
                f"output '{name}' has shape {list(shape)}; the yolox decoder expects the raw head "
                f"[1, anchors, 5 + classes] (x, y, log w, log h, objectness, class scores)"
            )
        expected = anchor_count(manifest.input.height, manifest.input.width, manifest.decoder.strides)
        if shape[1] != expected:
            raise ArtifactError(
                f"output '{name}' has {shape[1]} anchors; the yolox decoder expects {expected} for "
                f"{describe(manifest)}{yolox_hint(shape, expected)}"
            )
        check_labels(manifest, shape[2] - 5, f"output '{name}' {list(shape)} = 5 + {shape[2] - 5}")


def yolox_hint(shape: Shape, expected: int) -> str:
    if shape[2] == expected:
        return " (it looks like the Ultralytics layout [1, 4 + classes, anchors]: try --decoder yolov8)"
    return " (wrong --input-size or strides, or not a yolox raw head?)"

"""The Ultralytics export ``[1, 4 + nc, A]``: cx, cy, w, h in input pixels, class probabilities,
no objectness."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from edgetally.artifact import Manifest
from edgetally.errors import ArtifactError
from edgetally.postprocess.decoders import Candidates, Decoder, cxcywh_to_xyxy
from edgetally.postprocess.shapes import (
    Shape,
    anchor_count,
    check_labels,
    describe,
    single_output,
)


class Yolov8Decoder(Decoder):
    """Ultralytics export [1, 4 + nc, A]: cx, cy, w, h in input pixels; score = best class probability."""

    family = "yolov8"
    # Ultralytics: RGB scaled to 0..1, centred letterbox, pad 114.
    input_defaults: ClassVar[dict[str, Any]] = {
        "color": "RGB",
        "mean": [0.0] * 3,
        "std": [255.0] * 3,
        "letterbox_align": "center",
        "pad_value": 114,
    }

    def candidates(self, outputs: Sequence[np.ndarray]) -> Candidates:
        pred = np.asarray(outputs[0], dtype=np.float32)[0]
        class_probs = pred[4:]
        best = class_probs.max(axis=0)
        cols = np.flatnonzero(best >= self.score_threshold)
        class_ids = class_probs[:, cols].argmax(axis=0).astype(np.int64)
        box = pred[:4, cols].T
        return cxcywh_to_xyxy(box[:, 0:2], box[:, 2:4]), best[cols], class_ids

    @classmethod
    def check_shapes(cls, manifest: Manifest, shapes: list[Shape]) -> None:
        shape, name = single_output(manifest, shapes, "[1, 4 + classes, anchors]")
        expected = anchor_count(manifest.input.height, manifest.input.width, manifest.decoder.strides)
        if len(shape) != 3 or shape[0] != 1 or shape[1] < 5:
            raise ArtifactError(
                f"output '{name}' has shape {list(shape)}; the yolov8 decoder expects the Ultralytics "
                f"layout [1, 4 + classes, anchors] (cx, cy, w, h, class scores)"
            )
        if shape[2] != expected:
            hint = ""
            if shape[1] == expected and shape[2] - 5 == len(manifest.labels):
                hint = " (it looks like a yolox raw head [1, anchors, 5 + classes]: try --decoder yolox)"
            elif shape[1] == expected:
                hint = " (it looks transposed: [1, anchors, 4 + classes]; export in the Ultralytics layout)"
            raise ArtifactError(
                f"output '{name}' has shape {list(shape)}; the yolov8 decoder expects [1, 4 + classes, "
                f"{expected}] for {describe(manifest)}{hint}"
            )
        check_labels(manifest, shape[1] - 4, f"output '{name}' {list(shape)} = 4 + {shape[1] - 4}")

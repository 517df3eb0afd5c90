"""Already-decoded outputs: ``boxes [1, N, 4]`` xyxy (input pixels or 0..1) and
``scores [1, N, nc]`` (or ``[1, N]`` plus ``class_ids [1, N]``), optional ``count``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from edgetally.artifact import Manifest
from edgetally.errors import ArtifactError
from edgetally.postprocess.decoders import Candidates, Decoder
from edgetally.postprocess.shapes import Shape, check_labels, output_name, role_indices


class BoxesScoresDecoder(Decoder):
    """Decoded boxes [1, N, 4] xyxy + scores [1, N, nc] (or [1, N] + class_ids), optional count [1]."""

    family = "boxes_scores"
    # Most exports with decoded outputs come from Ultralytics-style pipelines; override when not.
    input_defaults: ClassVar[dict[str, Any]] = {
        "color": "RGB",
        "mean": [0.0] * 3,
        "std": [255.0] * 3,
        "letterbox_align": "center",
        "pad_value": 114,
    }

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

    @classmethod
    def check_shapes(cls, manifest: Manifest, shapes: list[Shape]) -> None:
        roles = role_indices(manifest)
        if "boxes" not in roles or "scores" not in roles:
            raise ArtifactError(
                "the boxes_scores decoder needs an output with role 'boxes' [1, N, 4] and one with role "
                "'scores' [1, N, classes]; outputs: "
                + ", ".join(f"'{o.name}' {list(s)} role={o.role}" for o, s in zip(manifest.outputs, shapes))
            )
        boxes, scores = shapes[roles["boxes"]], shapes[roles["scores"]]
        boxes_name, scores_name = output_name(manifest, roles["boxes"]), output_name(manifest, roles["scores"])
        if len(boxes) != 3 or boxes[0] != 1 or boxes[2] != 4:
            raise ArtifactError(f"output '{boxes_name}' (boxes) has shape {list(boxes)}; expected [1, N, 4] xyxy")
        if len(scores) not in (2, 3) or scores[0] != 1 or scores[1] != boxes[1]:
            raise ArtifactError(
                f"output '{scores_name}' (scores) has shape {list(scores)}; expected [1, {boxes[1]}, classes] "
                f"(or [1, {boxes[1]}] with a 'class_ids' output) to match boxes {list(boxes)}"
            )
        if len(scores) == 3:
            check_labels(manifest, scores[2], f"output '{scores_name}' {list(scores)}")
        elif "class_ids" not in roles or shapes[roles["class_ids"]] != scores:
            raise ArtifactError(
                f"output '{scores_name}' (scores) is {list(scores)}, one score per box: the model must also "
                f"have an output with role 'class_ids' of the same shape"
            )

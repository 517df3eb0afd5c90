"""Does a model's output fit its decoder? Clear answers for `edge convert` and for artifact loading.

Each check raises ``ArtifactError`` with the output's name, the shape it has, the shape the
decoder family expects and why; the converter re-raises it as ``ConversionError`` naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from edgetally.artifact import Manifest
from edgetally.errors import ArtifactError

Shape = tuple[int, ...]


def anchor_count(height: int, width: int, strides: Sequence[int]) -> int:
    """Number of grid cells over all strides (stride-2 convs with padding round up)."""
    return sum(math.ceil(height / s) * math.ceil(width / s) for s in strides)


def _describe(manifest: Manifest) -> str:
    spec = manifest.input
    strides = ",".join(str(s) for s in manifest.decoder.strides)
    return f"a {spec.height}x{spec.width} input with strides {strides}"


def _name(manifest: Manifest, index: int) -> str:
    return manifest.outputs[index].name if index < len(manifest.outputs) else f"#{index}"


def _check_labels(manifest: Manifest, classes: int, where: str) -> None:
    labels = len(manifest.labels)
    if classes != labels:
        raise ArtifactError(
            f"labels: {labels} names given but the model has {classes} classes ({where}); "
            f"pass a labels file with exactly {classes} names, in class order"
        )


def _check_yolox(manifest: Manifest, shapes: list[Shape]) -> None:
    shape, name = _single_output(manifest, shapes, "[1, anchors, 5 + classes]")
    if len(shape) != 3 or shape[0] != 1 or shape[2] < 6:
        raise ArtifactError(
            f"output '{name}' has shape {list(shape)}; the yolox decoder expects the raw head "
            f"[1, anchors, 5 + classes] (x, y, log w, log h, objectness, class scores)"
        )
    expected = anchor_count(manifest.input.height, manifest.input.width, manifest.decoder.strides)
    if shape[1] != expected:
        raise ArtifactError(
            f"output '{name}' has {shape[1]} anchors; the yolox decoder expects {expected} for "
            f"{_describe(manifest)}{_yolox_hint(shape, expected)}"
        )
    _check_labels(manifest, shape[2] - 5, f"output '{name}' {list(shape)} = 5 + {shape[2] - 5}")


def _yolox_hint(shape: Shape, expected: int) -> str:
    if shape[2] == expected:
        return " (it looks like the Ultralytics layout [1, 4 + classes, anchors]: try --decoder yolov8)"
    return " (wrong --input-size or strides, or not a yolox raw head?)"


def _check_yolov8(manifest: Manifest, shapes: list[Shape]) -> None:
    shape, name = _single_output(manifest, shapes, "[1, 4 + classes, anchors]")
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
            f"{expected}] for {_describe(manifest)}{hint}"
        )
    _check_labels(manifest, shape[1] - 4, f"output '{name}' {list(shape)} = 4 + {shape[1] - 4}")


def _single_output(manifest: Manifest, shapes: list[Shape], layout: str) -> tuple[Shape, str]:
    family = manifest.decoder.family
    if len(shapes) != 1:
        raise ArtifactError(
            f"the {family} decoder expects one output {layout}; the model has {len(shapes)}: "
            + ", ".join(f"'{_name(manifest, i)}' {list(s)}" for i, s in enumerate(shapes))
        )
    return shapes[0], _name(manifest, 0)


def role_indices(manifest: Manifest) -> dict[str, int]:
    """Output role -> index in ``manifest.outputs`` (roles other than 'raw' must be unique)."""
    found: dict[str, int] = {}
    for index, spec in enumerate(manifest.outputs):
        if spec.role in found and spec.role != "raw":
            raise ArtifactError(f"outputs: role '{spec.role}' is given to more than one output")
        found.setdefault(spec.role, index)
    return found


def _check_boxes_scores(manifest: Manifest, shapes: list[Shape]) -> None:
    roles = role_indices(manifest)
    if "boxes" not in roles or "scores" not in roles:
        raise ArtifactError(
            "the boxes_scores decoder needs an output with role 'boxes' [1, N, 4] and one with role "
            "'scores' [1, N, classes]; outputs: "
            + ", ".join(f"'{o.name}' {list(s)} role={o.role}" for o, s in zip(manifest.outputs, shapes))
        )
    boxes, scores = shapes[roles["boxes"]], shapes[roles["scores"]]
    boxes_name, scores_name = _name(manifest, roles["boxes"]), _name(manifest, roles["scores"])
    if len(boxes) != 3 or boxes[0] != 1 or boxes[2] != 4:
        raise ArtifactError(f"output '{boxes_name}' (boxes) has shape {list(boxes)}; expected [1, N, 4] xyxy")
    if len(scores) not in (2, 3) or scores[0] != 1 or scores[1] != boxes[1]:
        raise ArtifactError(
            f"output '{scores_name}' (scores) has shape {list(scores)}; expected [1, {boxes[1]}, classes] "
            f"(or [1, {boxes[1]}] with a 'class_ids' output) to match boxes {list(boxes)}"
        )
    if len(scores) == 3:
        _check_labels(manifest, scores[2], f"output '{scores_name}' {list(scores)}")
    elif "class_ids" not in roles or shapes[roles["class_ids"]] != scores:
        raise ArtifactError(
            f"output '{scores_name}' (scores) is {list(scores)}, one score per box: the model must also "
            f"have an output with role 'class_ids' of the same shape"
        )


_CHECKS = {"yolox": _check_yolox, "yolov8": _check_yolov8, "boxes_scores": _check_boxes_scores}


def validate_output_shapes(manifest: Manifest, shapes: Sequence[Sequence[int]]) -> None:
    """Raise ``ArtifactError`` explaining why ``shapes`` (one per manifest output) do not fit the decoder."""
    shape_list = [tuple(int(d) for d in s) for s in shapes]
    if len(shape_list) != len(manifest.outputs):
        raise ArtifactError(
            f"the model has {len(shape_list)} outputs but the manifest lists {len(manifest.outputs)}"
        )
    _CHECKS[manifest.decoder.family](manifest, shape_list)


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


def describe(manifest: Manifest) -> str:
    spec = manifest.input
    strides = ",".join(str(s) for s in manifest.decoder.strides)
    return f"a {spec.height}x{spec.width} input with strides {strides}"


def output_name(manifest: Manifest, index: int) -> str:
    return manifest.outputs[index].name if index < len(manifest.outputs) else f"#{index}"


def check_labels(manifest: Manifest, classes: int, where: str) -> None:
    labels = len(manifest.labels)
    if classes != labels:
        raise ArtifactError(
            f"labels: {labels} names given but the model has {classes} classes ({where}); "
            f"pass a labels file with exactly {classes} names, in class order"
        )


def single_output(manifest: Manifest, shapes: list[Shape], layout: str) -> tuple[Shape, str]:
    family = manifest.decoder.family
    if len(shapes) != 1:
        raise ArtifactError(
            f"the {family} decoder expects one output {layout}; the model has {len(shapes)}: "
            + ", ".join(f"'{output_name(manifest, i)}' {list(s)}" for i, s in enumerate(shapes))
        )
    return shapes[0], output_name(manifest, 0)


def role_indices(manifest: Manifest) -> dict[str, int]:
    """Output role -> index in ``manifest.outputs`` (roles other than 'raw' must be unique)."""
    found: dict[str, int] = {}
    for index, spec in enumerate(manifest.outputs):
        if spec.role in found and spec.role != "raw":
            raise ArtifactError(f"outputs: role '{spec.role}' is given to more than one output")
        found.setdefault(spec.role, index)
    return found

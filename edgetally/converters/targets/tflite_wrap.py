"""TFLite artifacts for LiteRT: wrap a .tflite with a manifest read from the model itself.

``wrap_tflite`` makes any .tflite file -- e.g. a third party's INT8 export -- an artifact, so the
accuracy gate (``edge verify``) can judge it against the FP32 reference. ``wrap_split_tflite``
wraps a full-integer model whose packed output was split into parts (edgetally.converters.graph.output_split): the
manifest keeps the reference's logical output and lists the model tensors that make it up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgetally.artifact import Artifact, InputSpec, OutputPart, OutputSpec, Quantization
from edgetally.converters.derive import derive, tool_versions
from edgetally.errors import ConversionError

_DTYPES = {"float32": "float32", "float16": "float16", "int8": "int8", "uint8": "uint8"}


def _quantization(detail: dict) -> Quantization | None:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        return None
    return Quantization(scale=float(scale), zero_point=int(zero_point))


def read_io(model: Path) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) tensor details of a .tflite file, via the runner's own interpreter choice."""
    from edgetally.runtimes.litert import _interpreter_class

    try:
        interpreter = _interpreter_class()(model_path=str(model))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ConversionError(f"{model}: LiteRT cannot read the model: {exc}") from exc
    return interpreter.get_input_details(), interpreter.get_output_details()


def _input_spec(reference: Artifact, detail: dict) -> InputSpec:
    shape = [int(v) for v in detail["shape"]]
    layout = "NCHW" if len(shape) == 4 and shape[1] == 3 else "NHWC"
    dtype = _DTYPES.get(detail["dtype"].__name__)
    if dtype is None:
        raise ConversionError(f"input dtype {detail['dtype']} is not supported")
    return reference.manifest.input.model_copy(
        update={
            "name": detail["name"],
            "shape": shape,
            "layout": layout,
            "dtype": dtype,
            "quantization": _quantization(detail),
        }
    )


def wrap_tflite(model: Path, reference: Artifact, out: Path, precision: str = "int8", note: str = "") -> Artifact:
    """Copy ``model`` into ``out`` with a manifest inheriting the reference's decoder, labels and preprocessing.

    Outputs are matched to the reference's outputs by position (TFLite renames them, e.g. PartitionedCall:0).
    """
    model, out = Path(model), Path(out)
    inputs, outputs = read_io(model)
    if len(inputs) != 1 or len(outputs) != len(reference.manifest.outputs):
        raise ConversionError(
            f"{model}: has {len(inputs)} inputs / {len(outputs)} outputs; the reference has 1 / {len(reference.manifest.outputs)}"
        )
    specs = [
        OutputSpec(
            name=d["name"],
            shape=[int(v) for v in d["shape"]],
            dtype=d["dtype"].__name__,
            quantization=_quantization(d),
            role=ref.role,
        )
        for d, ref in zip(outputs, reference.manifest.outputs)
    ]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(model, out / model.name)
    notes = [f"wrapped third-party TFLite {model.name}"] + ([note] if note else [])
    return derive(
        reference,
        out,
        model.name,
        format="tflite",
        runtime="litert",
        precision=precision,
        input=_input_spec(reference, inputs[0]),
        outputs=specs,
        notes=notes,
        tools=tool_versions("ai-edge-litert", "tflite-runtime"),
    )


def _match_parts(model: Path, outputs: list[dict], shapes: list[list[int]]) -> list[dict]:
    """The model's output details in the order of the split ``shapes`` (TFLite renames and may reorder)."""
    remaining = list(outputs)
    ordered = []
    for shape in shapes:
        found = next((d for d in remaining if [int(v) for v in d["shape"]] == list(shape)), None)
        if found is None:
            raise ConversionError(f"{model}: no output shaped {shape} (outputs: {[list(d['shape']) for d in outputs]})")
        remaining.remove(found)
        ordered.append(found)
    return ordered


def wrap_split_tflite(
    model: Path, reference: Artifact, out: Path, part_shapes: list[list[int]], notes: list[str], tools: dict[str, str]
) -> Artifact:
    """Copy ``model`` (one output per part of the reference's single output) into ``out`` with a manifest.

    part_shapes: the parts' shapes in concatenation order (last axis), as edgetally.converters.graph.output_split wrote them.
    """
    model, out = Path(model), Path(out)
    inputs, outputs = read_io(model)
    if len(inputs) != 1 or len(reference.manifest.outputs) != 1 or len(outputs) != len(part_shapes):
        raise ConversionError(
            f"{model}: has {len(inputs)} inputs / {len(outputs)} outputs; expected 1 / "
            f"{len(part_shapes)} parts of the reference's one output"
        )
    parts = [
        OutputPart(
            name=d["name"], shape=[int(v) for v in d["shape"]], dtype=d["dtype"].__name__, quantization=_quantization(d)
        )
        for d in _match_parts(model, outputs, part_shapes)
    ]
    logical = reference.manifest.outputs[0].model_copy(update={"parts": parts})
    out.mkdir(parents=True, exist_ok=True)
    if model.parent.resolve() != out.resolve():
        shutil.copy2(model, out / model.name)
    return derive(
        reference,
        out,
        model.name,
        format="tflite",
        runtime="litert",
        precision="int8",
        input=_input_spec(reference, inputs[0]),
        outputs=[logical],
        notes=notes,
        tools=tools,
    )

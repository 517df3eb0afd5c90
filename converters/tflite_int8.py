"""TFLite artifacts for LiteRT: wrap an existing .tflite with a manifest read from the model itself.

Full-integer INT8 conversion (ai-edge-quantizer on an FP32 .tflite, or litert-torch) is not
implemented yet; ``wrap_tflite`` makes any .tflite file -- e.g. a third party's INT8 export --
an artifact, so the accuracy gate (``edge verify``) can judge it against the FP32 reference.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from converters.derive import derive, tool_versions
from edge.artifact import Artifact, InputSpec, OutputSpec, Quantization
from edge.errors import ConversionError

_DTYPES = {"float32": "float32", "float16": "float16", "int8": "int8", "uint8": "uint8"}


def _quantization(detail: dict) -> Quantization | None:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        return None
    return Quantization(scale=float(scale), zero_point=int(zero_point))


def read_io(model: Path) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) tensor details of a .tflite file, via the runner's own interpreter choice."""
    from edge.runtimes.litert import _interpreter_class

    try:
        interpreter = _interpreter_class()(model_path=str(model))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ConversionError(f"{model}: LiteRT cannot read the model: {exc}") from exc
    return interpreter.get_input_details(), interpreter.get_output_details()


def _input_spec(reference: Artifact, detail: dict) -> InputSpec:
    shape = [int(v) for v in detail["shape"]]
    layout = "NCHW" if len(shape) == 4 and shape[1] == 3 else "NHWC"
    dtype = _DTYPES.get(detail["dtype"].__name__, None)
    if dtype is None:
        raise ConversionError(f"input dtype {detail['dtype']} is not supported")
    return reference.manifest.input.model_copy(
        update={"name": detail["name"], "shape": shape, "layout": layout, "dtype": dtype, "quantization": _quantization(detail)}
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
        OutputSpec(name=d["name"], shape=[int(v) for v in d["shape"]], dtype=d["dtype"].__name__,
                   quantization=_quantization(d), role=ref.role)
        for d, ref in zip(outputs, reference.manifest.outputs)
    ]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(model, out / model.name)
    notes = [f"wrapped third-party TFLite {model.name}"] + ([note] if note else [])
    return derive(reference, out, model.name, format="tflite", runtime="litert", precision=precision,
                  input=_input_spec(reference, inputs[0]), outputs=specs, notes=notes,
                  tools=tool_versions("ai-edge-litert", "tflite-runtime"))

"""Package an FP32 ONNX model as an artifact: the model file plus a manifest the runner trusts.

``package_fp32`` checks everything the runner would otherwise find out on the device: the file
is an ONNX model, onnxruntime loads and runs it at the requested input size, its outputs fit the
decoder family and the labels match the number of classes. Nothing is written until all pass.
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from edgetally.artifact import Artifact, DecoderSpec, InputSpec, Manifest, OutputSpec, sha256_file
from edgetally.converters.labels import load_labels
from edgetally.errors import ArtifactError, ConversionError
from edgetally.postprocess import DECODERS, validate_output_shapes

PREPROCESS_KEYS = ("color", "mean", "std", "letterbox_align", "pad_value", "resize")
DECODER_KEYS = (
    "strides",
    "score_threshold",
    "nms_iou",
    "max_detections",
    "class_agnostic_nms",
    "drop_contained",
    "boxes_normalized",
)
ROLES = ("raw", "boxes", "scores", "class_ids", "count")


def package_fp32(
    model: str | Path,
    out: str | Path,
    decoder: str,
    input_size: int | tuple[int, int],
    labels: str | Path | Sequence[str] = "coco80",
    *,
    preprocess: Mapping[str, Any] | None = None,
    decoder_options: Mapping[str, Any] | None = None,
    output_roles: Mapping[str, str] | None = None,
) -> Artifact:
    """Check ``model`` (an FP32 ONNX file) and write it with ``manifest.json`` into ``out``.

    input_size: 416 or (height, width). labels: 'coco80', a .txt/.yaml path, or a list of names.
    preprocess: overrides of InputSpec fields (color, mean, std, letterbox_align, pad_value, resize).
    decoder_options: overrides of DecoderSpec fields (strides, score_threshold, nms_iou, ...).
    output_roles: output name -> role ('boxes', 'scores', 'class_ids', 'count'); boxes_scores only,
    guessed from names and shapes when not given.
    Raises ConversionError naming the file and what is wrong.
    """
    model, out = Path(model), Path(out)
    _check_model_file(model, out)
    if decoder not in DECODERS:
        raise ConversionError(f"--decoder {decoder!r} is not known; choose one of {', '.join(sorted(DECODERS))}")
    height, width = _parse_size(input_size)
    names = list(labels) if isinstance(labels, (list, tuple)) else load_labels(labels)
    proto = _load_onnx(model)
    session = _open_session(model)
    input_spec = _input_spec(model, session, height, width, decoder, preprocess or {})
    outputs = _dummy_outputs(model, session, input_spec)
    roles = _output_roles(model, decoder, outputs, output_roles or {})
    manifest = _manifest(model, decoder, input_spec, outputs, roles, names, decoder_options or {}, proto)
    try:
        validate_output_shapes(manifest, [o.shape for o in manifest.outputs])
    except ArtifactError as exc:
        raise ConversionError(f"{model}: {exc}") from exc
    return _write_artifact(model, out, manifest)


def _check_model_file(model: Path, out: Path) -> None:
    if not model.exists():
        raise ConversionError(f"{model}: no such file")
    if not model.is_file():
        raise ConversionError(f"{model}: not a file (expected an .onnx model)")
    if out.exists() and not out.is_dir():
        raise ConversionError(f"{out}: exists and is not a directory (--out must be a folder)")


def _parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    dims = [size, size] if isinstance(size, int) else list(size)
    if len(dims) != 2 or any(not isinstance(d, (int, np.integer)) or d <= 0 for d in dims):
        raise ConversionError(f"input size {size!r}: expected a positive int or (height, width)")
    return int(dims[0]), int(dims[1])


def _load_onnx(model: Path) -> Any:
    import onnx

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError/RuntimeError variants for garbage bytes
        raise ConversionError(f"{model}: not an ONNX model (cannot parse it: {exc})") from exc
    # Protobuf parses many random byte strings as an empty message: require a real graph.
    if proto.ir_version == 0 or len(proto.graph.node) == 0:
        raise ConversionError(f"{model}: not an ONNX model (no graph in the file)")
    return proto


def _open_session(model: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises untyped errors
        raise ConversionError(f"{model}: onnxruntime cannot load the model: {exc}") from exc


def _input_spec(
    model: Path, session: Any, height: int, width: int, decoder: str, overrides: Mapping[str, Any]
) -> InputSpec:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ConversionError(f"{model}: expected one image input, the model has {[i.name for i in inputs]}")
    info = inputs[0]
    if info.type != "tensor(float)":
        raise ConversionError(f"{model}: input '{info.name}' is {info.type}; fp32 packaging expects tensor(float)")
    layout, shape = _fixed_shape(model, info.name, list(info.shape), height, width)
    unknown = set(overrides) - set(PREPROCESS_KEYS)
    if unknown:
        raise ConversionError(f"preprocessing option(s) {sorted(unknown)} not known; known: {list(PREPROCESS_KEYS)}")
    fields = {**DECODERS[decoder].input_defaults, **{k: v for k, v in overrides.items() if v is not None}}
    for key in ("mean", "std"):
        fields[key] = _three(key, fields[key])
    try:
        return InputSpec(name=info.name, shape=shape, layout=layout, dtype="float32", **fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConversionError(f"preprocessing: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def _three(key: str, value: float | Sequence[float]) -> list[float]:
    values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ConversionError(f"--{key}: expected 1 or 3 values, got {len(values)}")
    if key == "std" and any(v == 0 for v in values):
        raise ConversionError("--std: values must be non-zero")
    return values


def _fixed_shape(model: Path, name: str, dims: list[Any], height: int, width: int) -> tuple[str, list[int]]:
    """Model input dims (ints, or str/None when dynamic) -> (layout, [1, ...] with H, W fixed)."""
    if len(dims) != 4:
        raise ConversionError(f"{model}: input '{name}' has shape {dims}; expected 4-D NCHW or NHWC")
    layout = "NHWC" if dims[3] == 3 and dims[1] != 3 else "NCHW"
    h_axis, w_axis = (2, 3) if layout == "NCHW" else (1, 2)
    c_axis = 1 if layout == "NCHW" else 3
    for axis, want, what in (
        (0, 1, "batch"),
        (h_axis, height, "height"),
        (w_axis, width, "width"),
        (c_axis, 3, "channels"),
    ):
        if isinstance(dims[axis], int) and dims[axis] != want:
            hint = " (use --input-size to match the model)" if what in ("height", "width") else ""
            raise ConversionError(
                f"{model}: input '{name}' {dims} ({layout}) has {what} {dims[axis]}, expected {want}{hint}"
            )
    shape = [1, 3, height, width] if layout == "NCHW" else [1, height, width, 3]
    return layout, shape


def _dummy_outputs(model: Path, session: Any, spec: InputSpec) -> list[tuple[str, list[int], str]]:
    """Run one pad-valued tensor to learn the real output shapes (dynamic dims resolved)."""
    tensor = np.full(spec.shape, spec.pad_value, dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    try:
        results = session.run(names, {spec.name: tensor})
    except Exception as exc:  # onnxruntime raises untyped errors
        raise ConversionError(f"{model}: onnxruntime cannot run the model on a {spec.shape} input: {exc}") from exc
    return [(n, [int(d) for d in r.shape], str(r.dtype)) for n, r in zip(names, results)]


def _output_roles(
    model: Path, decoder: str, outputs: list[tuple[str, list[int], str]], explicit: Mapping[str, str]
) -> list[str]:
    names = [name for name, _, _ in outputs]
    for name, role in explicit.items():
        if name not in names:
            raise ConversionError(f"{model}: output role given for '{name}', but the outputs are {names}")
        if role not in ROLES:
            raise ConversionError(f"output role '{role}' for '{name}' is not one of {list(ROLES)}")
    if decoder != "boxes_scores":
        return [explicit.get(name, "raw") for name in names]
    guessed = _guess_roles([(n, s) for n, s, _ in outputs])
    return [explicit.get(name, role) for name, role in zip(names, guessed)]


def _guess_roles(outputs: list[tuple[str, list[int]]]) -> list[str]:
    """Roles for decoded outputs from names first ('box', 'score', 'class', 'count'), then shapes."""
    hints = (
        ("count", ("count", "num")),
        ("boxes", ("box",)),
        ("class_ids", ("class", "label")),
        ("scores", ("score", "conf")),
    )
    roles: list[str] = []
    for name, shape in outputs:
        role = next((r for r, words in hints if any(w in name.lower() for w in words)), "raw")
        if role == "raw":
            if int(np.prod(shape)) == 1:
                role = "count"
            elif len(shape) == 3 and shape[2] == 4 and "boxes" not in roles:
                role = "boxes"
            elif "scores" not in roles:
                role = "scores"
        roles.append(role)
    return roles


def _manifest(
    model: Path,
    decoder: str,
    input_spec: InputSpec,
    outputs: list[tuple[str, list[int], str]],
    roles: list[str],
    labels: list[str],
    decoder_options: Mapping[str, Any],
    proto: Any,
) -> Manifest:
    unknown = set(decoder_options) - set(DECODER_KEYS)
    if unknown:
        raise ConversionError(f"decoder option(s) {sorted(unknown)} not known; known: {list(DECODER_KEYS)}")
    options = {k: v for k, v in decoder_options.items() if v is not None}
    try:
        decoder_spec = DecoderSpec(family=decoder, **options)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConversionError(f"decoder: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    source_hash = sha256_file(model)
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in proto.opset_import)
    return Manifest(
        format="onnx",
        runtime="onnxruntime",
        model_file=model.name,
        precision="fp32",
        input=input_spec,
        outputs=[OutputSpec(name=n, shape=s, dtype=d, role=r) for (n, s, d), r in zip(outputs, roles)],
        decoder=decoder_spec,
        labels=labels,
        source_model_sha256=source_hash,
        model_sha256=source_hash,  # fp32 packaging copies the file byte for byte
        tools=_tool_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        notes=[f"packaged from {model.name} (opset {opsets}) without changes"],
    )


def _tool_versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    import edgetally

    return {
        "edgetally": edgetally.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _write_artifact(model: Path, out: Path, manifest: Manifest) -> Artifact:
    out.mkdir(parents=True, exist_ok=True)
    target = out / manifest.model_file
    if not (target.exists() and target.samefile(model)):
        shutil.copyfile(model, target)
    if sha256_file(target) != manifest.model_sha256:
        raise ConversionError(f"{target}: copy does not match the source model's sha256 (disk full?)")
    Artifact(out, manifest).save()
    return Artifact.load(out)

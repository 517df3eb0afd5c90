"""FP32 ONNX -> INT8 TFLite for LiteRT: onnx2torch -> litert-torch (FP32 .tflite) -> ai-edge-quantizer.

1. The ONNX graph becomes a torch.fx module (onnx2torch); its constant Slice/Reshape/Resize inputs
   are baked in (edgetally.converters.graph.fx_bake) so torch.export accepts it; litert-torch writes an FP32
   .tflite (about 13 s for YOLOX-nano).
2. ai-edge-quantizer quantises it statically (INT8 asymmetric activations, INT8 per-channel
   weights, integer kernels), calibrated on the runner's own preprocessed tensors.

Why not litert-torch PT2E directly: its converter runs the Q/DQ graph in STATIC mode and requantises
the decode tail into the head's scale (sigmoid scores in [0, 1] on a scale of ~1.7: the known-bad
specimen's failure) even when PT2E leaves the tail unannotated. ai-edge-quantizer takes a per-op
recipe, so the strategy's repairs map onto it: the decode tail (ops after the last weighted op),
the first convolutions, the head's output convolutions stay float (``no_quantize``); the model's
input is int8 (the manifest carries its scale/zero point) and its output float. With ``input_range``
(profiles with io_dtype int8/uint8, edgetally.converters.targets.tflite_full_int) the outputs stay integer too.

Heavy and optional (the ``convert-tflite`` extra plus a --no-deps step, see pyproject.toml):
everything is imported inside functions; a missing package is a ConversionError naming it.
"""

from __future__ import annotations

import re
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.accuracy.strategy import Strategy
from edgetally.errors import ConversionError

REQUIRED = ("litert_torch", "onnx2torch", "ai_edge_quantizer")
WEIGHTED_TFL = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})
ACTIVATIONS_TFL = frozenset({"LOGISTIC", "MUL", "RELU", "RELU6", "HARD_SWISH", "LEAKY_RELU"})


# ai-edge-quantizer has min/max calibration only, so the ORT ladder's percentile rungs would repeat
# earlier attempts; its last rung keeps the head's output convs float too. Measured on YOLOX-nano /
# coco128 (64 calibration, 64 other evaluation images; benchmarks/tflite_bench.py): tail-float
# -12.8 mAP50-95 points, + float stem (3 convs) -3.2, + float head output convs -0.5 (passes).
TFLITE_REPAIRS: tuple[Strategy, ...] = (
    Strategy("tail-float"),
    Strategy("tail-float+float-stem", float_stem_convs=3),
    Strategy("tail-float+float-stem+float-head", float_stem_convs=3, float_head_convs=True),
)


def missing_packages() -> list[str]:
    """Packages of the ``convert-tflite`` extra that are not importable (empty when all are there)."""
    import importlib.util

    return [name for name in ("torch", *REQUIRED) if importlib.util.find_spec(name) is None]


def _require() -> None:
    missing = missing_packages()
    if missing:
        raise ConversionError(
            f"TFLite INT8 conversion needs {', '.join(missing)}: install torch==2.13.0 first, "
            "then `pip install -e .[convert-tflite]`"
        )


def _torchvision_stand_in() -> None:
    """onnx2torch imports torchvision for NMS/RoiAlign only; PyPI torchvision does not load beside the
    CPU torch build (toolchain-notes). Detector heads use neither: a stand-in that fails loudly if used."""
    import importlib.util

    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise ConversionError("the ONNX graph uses NMS/RoiAlign, which needs torchvision: export the raw head")

    package, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.nms = ops.roi_align = ops.box_convert = unavailable  # type: ignore[attr-defined]
    package.ops = ops  # type: ignore[attr-defined]
    sys.modules.setdefault("torchvision", package)
    sys.modules.setdefault("torchvision.ops", ops)


def _sanitize(name: str) -> str:
    return re.sub(r"\W", "_", name)


def load_onnx_as_torch(source: Path) -> tuple[Any, list[str], Any]:
    """(fx module with baked constants, ONNX node names, the named ONNX proto); module name == node name."""
    import onnx

    from edgetally.converters.graph.fx_bake import bake_constants
    from edgetally.converters.graph.nodes import name_nodes

    _torchvision_stand_in()
    import onnx2torch

    proto = _constants_as_initializers(onnx.load(str(source)))
    name_nodes(proto)
    for node in proto.graph.node:
        node.name = _sanitize(node.name)
    try:
        module = onnx2torch.convert(proto).eval()
    except Exception as exc:  # NotImplementedError for unsupported ops, among others
        raise ConversionError(f"{source}: onnx2torch cannot convert the graph: {exc}") from exc
    return bake_constants(module), [n.name for n in proto.graph.node], proto


def _constants_as_initializers(proto: Any) -> Any:
    """Constant nodes -> initializers, so onnx2torch passes them as get_attr values bake_constants can see."""
    from onnx import numpy_helper

    kept = []
    for node in proto.graph.node:
        value = next((a for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None and len(node.output) == 1:
            array = numpy_helper.to_array(value.t)
            proto.graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        else:
            kept.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(kept)
    return proto


def onnx_to_fp32_tflite(source: Path, out_path: Path, example: np.ndarray) -> dict:
    """FP32 ONNX -> FP32 .tflite (onnx2torch + baked constants + litert-torch); -> build info."""
    _require()
    import os

    import torch

    started = time.perf_counter()
    module, _names, _proto = load_onnx_as_torch(Path(source))
    # litert-torch prints a progress tree on stdout, where `edge convert` prints its result; the
    # user can still ask for it with LITERT_TORCH_SHOW_PROGRESS=y.
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    try:
        import litert_torch

        edge_model = litert_torch.convert(module, (torch.from_numpy(np.ascontiguousarray(example)),))
        out_path.parent.mkdir(parents=True, exist_ok=True)
        edge_model.export(str(out_path))
    except Exception as exc:  # torch.export / MLIR lowering errors are untyped
        raise ConversionError(f"{source}: litert-torch cannot convert the model: {type(exc).__name__}: {exc}") from exc
    return {"fp32_tflite_seconds": round(time.perf_counter() - started, 1), "route": "onnx2torch -> litert-torch"}


class TflGraph:
    """Ops of a .tflite's main subgraph in execution order, with tensor names and consumers."""

    def __init__(self, path: Path) -> None:
        from edgetally.runtimes.litert import _interpreter_class

        interpreter = _interpreter_class()(model_path=str(path))
        interpreter.allocate_tensors()
        self.names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
        # No public API lists ops (this one is stable across LiteRT 1.x-2.x). DELEGATE entries are
        # XNNPACK's runtime partitions, not model ops: their outputs alias real ops' outputs.
        self.ops = [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
        self.consumers: dict[int, list[dict]] = {}
        for op in self.ops:
            for tensor in op["inputs"]:
                self.consumers.setdefault(int(tensor), []).append(op)
        self.signature = next(iter(interpreter.get_signature_list().items()))
        self.input_names = [d["name"] for d in interpreter.get_input_details()]
        self.output_tensors = {int(d["index"]) for d in interpreter.get_output_details()}

    def output_name(self, op: dict) -> str:
        return self.names[int(op["outputs"][0])]

    def _next(self, op: dict) -> list[dict]:
        return [c for t in op["outputs"] for c in self.consumers.get(int(t), [])]

    def tail(self) -> list[dict]:
        """Ops from which no weighted op is reachable: the decode tail (cf. onnx_graph.tail_nodes)."""
        reaches: dict[int, bool] = {}
        for op in reversed(self.ops):
            reaches[op["index"]] = op["op_name"] in WEIGHTED_TFL or any(
                reaches.get(c["index"], False) for c in self._next(op)
            )
        return [op for op in self.ops if not reaches[op["index"]]]

    def stem(self, convs: int) -> list[dict]:
        """Every op up to the ``convs``-th weighted op, plus that op's activation (SiLU = LOGISTIC + MUL)."""
        if convs <= 0:
            return []
        chosen: list[dict] = []
        for op in self.ops:
            chosen.append(op)
            if op["op_name"] in WEIGHTED_TFL:
                convs -= 1
                if convs == 0:
                    acts = [c for c in self._next(op) if c["op_name"] in ACTIVATIONS_TFL]
                    return chosen + acts + [c for a in acts for c in self._next(a) if c["op_name"] == "MUL"]
        return chosen

    def head_outputs(self) -> list[dict]:
        """Weighted ops that feed the decode tail directly (the last conv of each head branch)."""
        tail = {op["index"] for op in self.tail()}
        return [
            op for op in self.ops if op["op_name"] in WEIGHTED_TFL and any(c["index"] in tail for c in self._next(op))
        ]


def float_ops(graph: TflGraph, strategy: Strategy, integer_outputs: bool = False) -> list[str]:
    """Output tensor names of the ops ``strategy`` keeps float (ai-edge-quantizer matches ops by them).

    integer_outputs: the ops writing the model's outputs stay quantised whatever the strategy, so the
    model's output tensors are int8 (full-integer interface); the float tail then ends in QUANTIZE ops.
    """
    ops = graph.tail() if strategy.keep_tail_float else []
    ops += graph.stem(strategy.float_stem_convs)
    if strategy.float_head_convs:
        ops += graph.head_outputs()
    if integer_outputs:
        ops = [op for op in ops if not graph.output_tensors & {int(t) for t in op["outputs"]}]
    return list(dict.fromkeys(graph.output_name(op) for op in ops))


def _pin_input_range(qsv: dict, names: list[str], input_range: tuple[float, float]) -> None:
    """Quantise the model input on the exact range preprocessing produces (0..255 pixels: scale 1), not on
    what the calibration images happened to reach: then a uint8 input is the raw pixels, losslessly."""
    for name in names:
        stats = qsv.get(name)
        if stats:
            stats["min"] = np.full_like(np.asarray(stats["min"], dtype=np.float32), input_range[0])
            stats["max"] = np.full_like(np.asarray(stats["max"], dtype=np.float32), input_range[1])


_CALIBRATORS = {
    "moving-average": "minmax (moving average; ai-edge-quantizer has no percentile/entropy)",
    "minmax": "minmax (global over all images)",
    "mse": "mse (range minimising the quantisation error on a histogram over all images; "
    "measured on SiLU's output for tensors read only by SiLU)",
}


def _calibrate(quantizer: Any, fp32_tflite: Path, graph: TflGraph, data: dict, strategy: Strategy) -> tuple[dict, dict]:
    """(calibration result, info): ai-edge-quantizer's default ranges, or the strategy's range repairs."""
    from edgetally.converters.targets import tflite_ranges

    info: dict = {}
    if strategy.activation_ranges == "moving-average":
        qsv = quantizer.calibrate(data, num_threads=2)
    else:
        qsv = tflite_ranges.calibrate_global_minmax(
            fp32_tflite, quantizer.get_quantization_recipe(), data, num_threads=2
        )
    if strategy.activation_ranges == "mse":
        samples = [next(iter(sample.values())) for batch in data.values() for sample in batch]
        info.update(
            tflite_ranges.mse_ranges(
                qsv, fp32_tflite, samples, skip=graph.input_names, silu_inputs=tflite_ranges.silu_inputs(graph)
            )
        )
    if strategy.grid_clips:
        info.update({**tflite_ranges.floor_silu_ranges(qsv, graph), **tflite_ranges.clip_sigmoid_logits(qsv, graph)})
    return qsv, info


def quantize_tflite(
    fp32_tflite: Path,
    out_path: Path,
    calibration: CalibrationSet,
    strategy: Strategy,
    input_range: tuple[float, float] | None = None,
) -> dict:
    """FP32 .tflite -> static INT8 ``out_path`` per ``strategy``; -> build info for report.json.

    input_range: (min, max) of the preprocessed input. Given, the model gets the full-integer interface:
    its input is quantised on exactly that range and its outputs stay int8 even when the tail is float.
    """
    _require()
    from ai_edge_quantizer import quantizer as aeq

    started = time.perf_counter()
    graph = TflGraph(Path(fp32_tflite))
    keep_float = float_ops(graph, strategy, integer_outputs=input_range is not None)
    calib = calibration if strategy.calib_count is None else calibration.subset(strategy.calib_count)
    signature, io = graph.signature
    try:
        quantizer = aeq.Quantizer(str(fp32_tflite))
        quantizer.add_static_config(".*", "*", 8, 8)
        for name in keep_float:
            # The quantizer's op scope is the output tensor name plus ';': match it exactly.
            quantizer.update_quantization_recipe(f"^{re.escape(name)};$", "*", algorithm_key="no_quantize")
        data = {signature: [{io["inputs"][0]: np.ascontiguousarray(b)} for b in calib.batches()]}
        qsv, range_info = _calibrate(quantizer, Path(fp32_tflite), graph, data, strategy)
        if input_range is not None:
            _pin_input_range(qsv, graph.input_names, input_range)
        result = quantizer.quantize(qsv, enable_progress_report=False)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        result.export_model(str(out_path), overwrite=True)
    except Exception as exc:  # the quantizer raises ValueError/RuntimeError variants
        raise ConversionError(f"{fp32_tflite}: ai-edge-quantizer failed: {type(exc).__name__}: {exc}") from exc
    return {
        "format": "tflite",
        "route": "onnx2torch -> litert-torch FP32 -> ai-edge-quantizer static INT8",
        "activations": "s8 asymmetric",
        "weights": "s8 per-channel",
        "ops_float": len(keep_float),
        "ops_total": len(graph.ops),
        "calibration_images": len(calib),
        "calibrator": _CALIBRATORS[strategy.activation_ranges],
        **range_info,
        "seconds": round(time.perf_counter() - started, 1),
    }


def tflite_builder(reference: Any, calibration: CalibrationSet, work_dir: Path, io_dtype: str = "float32"):
    """A gate builder (strategy, directory) -> (INT8 TFLite artifact, build info) for edgetally.converters.build.

    The FP32 .tflite is converted once (in ``work_dir``) and re-quantised per strategy.
    """
    from edgetally.converters.derive import derive, tool_versions
    from edgetally.converters.targets.tflite_wrap import wrap_tflite

    _require()
    fp32 = Path(work_dir) / "fp32-tflite" / "fp32.tflite"
    fp32_info: dict = {}

    def build(strategy: Strategy, directory: Path) -> tuple[Any, dict]:
        if not fp32.is_file():
            fp32_info.update(onnx_to_fp32_tflite(reference.model_path, fp32, calibration.tensors[:1]))
        staging = directory / ".build"
        info = {**fp32_info, **quantize_tflite(fp32, staging / "model.int8.tflite", calibration, strategy)}
        note = f"INT8 TFLite (ai-edge-quantizer, int8 input, float output), strategy {strategy.name}"
        wrapped = wrap_tflite(staging / "model.int8.tflite", reference, directory, precision="int8", note=note)
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        tools = tool_versions("litert-torch", "onnx2torch", "ai-edge-quantizer", "ai-edge-litert", "torch")
        return derive(
            wrapped,
            directory,
            wrapped.manifest.model_file,
            format="tflite",
            runtime="litert",
            precision="int8",
            notes=wrapped.manifest.notes,
            tools=tools,
        ), info

    return build

"""FP32 ONNX -> OpenVINO IR, FP32 (reference) or INT8 via NNCF post-training quantisation.

NNCF preset MIXED (symmetric weights, asymmetric activations) kept mAP within noise of FP32 on
YOLOX-nano where the default PERFORMANCE preset lost about a point (toolchain-notes). The decode
tail goes in ``ignored_scope``, found on the OpenVINO graph itself (op names differ from ONNX).

Speed (YOLOX-nano 416, 1 thread, benchmarks/int8_speed_probe.py): ~0.93x onnxruntime FP32 and
~0.72x OpenVINO's own f32 build. Swish is fused into each INT8 convolution as a post-op yet costs
~5 ms of ~12: the same graph with ReLU runs at 0.56x. target_device=CPU, fast_bias_correction=False,
a quantised decode tail and the CPU properties (f32 precision hint, pinning, denormals) all land
within noise of this. Depthwise (grouped) convolutions stay float (``FLOAT_OP_TYPES``): as fast or
faster on every CPU measured, by about 10 % on one with AMX, where OpenVINO's INT8 depthwise kernels
are slow (docs/int8.md, "A third CPU"); the PERFORMANCE preset may be faster there, but loses accuracy.
Every build here reads the ONNX through ``read_onnx``, which folds a Focus stem into one stride-2
convolution first: OpenVINO runs its Slices and Concat with reference kernels (about 8 % of the
INT8 time; docs/int8.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.accuracy.strategy import Strategy
from edgetally.errors import ConversionError

WEIGHTED_TYPES = frozenset({"Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData"})
# Op types NNCF leaves float in every INT8 build: depthwise convolutions are a small share of the
# arithmetic, and their INT8 kernels were never faster than float ones (module docstring).
FLOAT_OP_TYPES = ("GroupConvolution",)
_ACTIVATION_TYPES = frozenset({"Sigmoid", "Multiply", "Relu", "Swish", "HSwish", "Clamp", "Add"})


def _consumers(op) -> list:
    return [target.get_node() for out in op.outputs() for target in out.get_target_inputs()]


def tail_ops(model) -> list[str]:
    """Friendly names of ops that reach no weighted op downstream (the decode tail)."""
    ops = model.get_ordered_ops()
    reaches: dict[str, bool] = {}
    for op in reversed(ops):
        kind = op.get_type_name()
        reaches[op.get_friendly_name()] = kind in WEIGHTED_TYPES or any(
            reaches.get(c.get_friendly_name(), False) for c in _consumers(op)
        )
    skip = {"Parameter", "Result", "Constant"}
    return [
        op.get_friendly_name() for op in ops if not reaches[op.get_friendly_name()] and op.get_type_name() not in skip
    ]


def stem_ops(model, convs: int) -> list[str]:
    """The first ``convs`` weighted ops and their elementwise activations."""
    weighted = [op for op in model.get_ordered_ops() if op.get_type_name() in WEIGHTED_TYPES][:convs]
    names = []
    for op in weighted:
        names.append(op.get_friendly_name())
        # OpenVINO folds the ONNX bias into an Add after the convolution; then comes the activation.
        frontier = _consumers(op)
        for _ in range(3):
            follow = [c for c in frontier if c.get_type_name() in _ACTIVATION_TYPES]
            names += [c.get_friendly_name() for c in follow]
            frontier = [n for c in follow for n in _consumers(c)]
    return list(dict.fromkeys(names))


def read_onnx(source: Path) -> tuple[Any, bool]:
    """ONNX -> OpenVINO model, with a Focus stem folded into one convolution first (exact, and about 8 % of
    YOLOX-nano's INT8 time here: edgetally.converters.graph.focus_fold); -> (model, whether it was folded)."""
    import onnx
    import openvino as ov

    from edgetally.converters.graph.focus_fold import fold_focus

    try:
        graph = onnx.load(str(source))
        folded = fold_focus(graph)
        if not folded:
            return ov.convert_model(str(source)), False
        with tempfile.TemporaryDirectory(prefix="edge-ov-") as tmp:
            path = Path(tmp) / "folded.onnx"
            onnx.save(graph, str(path))
            return ov.convert_model(str(path)), True
    except Exception as exc:
        raise ConversionError(f"{source}: OpenVINO conversion failed: {exc}") from exc


def convert_fp32(source: Path, out_xml: Path) -> dict:
    """ONNX -> IR with FP32 weights (compress_to_fp16=False: a true FP32 reference)."""
    import openvino as ov

    model, folded = read_onnx(source)
    try:
        ov.save_model(model, str(out_xml), compress_to_fp16=False)
    except Exception as exc:
        raise ConversionError(f"{source}: OpenVINO conversion failed: {exc}") from exc
    return {"format": "openvino-ir", "weights": "fp32", "focus_folded": folded}


def _advanced(strategy: Strategy):
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if strategy.calibrator == "minmax":
        return None
    # Quantile ranges ignore the rare activation outliers that stretch a min/max scale.
    return AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MEAN_QUANTILE)


def quantize_openvino(source: Path, out_xml: Path, calibration: CalibrationSet, strategy: Strategy) -> dict:
    """Write an INT8 IR (``out_xml`` + .bin); returns what was done (for report.json)."""
    import logging

    import nncf
    import openvino as ov

    nncf.set_log_level(logging.WARNING)  # NNCF logs every ignored node at INFO on stdout
    calib = calibration if strategy.calib_count is None else calibration.subset(strategy.calib_count)
    model, folded = read_onnx(source)
    ignored = (tail_ops(model) if strategy.keep_tail_float else []) + stem_ops(model, strategy.float_stem_convs)
    if strategy.float_head_convs:
        tail = set(tail_ops(model))
        ignored += [
            op.get_friendly_name()
            for op in model.get_ordered_ops()
            if op.get_type_name() in WEIGHTED_TYPES and any(c.get_friendly_name() in tail for c in _consumers(op))
        ]
    ignored = list(dict.fromkeys(ignored))
    try:
        quantized = nncf.quantize(
            model,
            nncf.Dataset(list(calib.batches())),
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(calib),
            ignored_scope=nncf.IgnoredScope(names=ignored, types=list(FLOAT_OP_TYPES), validate=False),
            advanced_parameters=_advanced(strategy),
        )
        ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    except Exception as exc:
        raise ConversionError(f"{source}: NNCF quantisation failed: {exc}") from exc
    return {
        "ops_ignored": ignored,
        "op_types_float": list(FLOAT_OP_TYPES),
        "calibration_images": len(calib),
        "preset": "MIXED",
        "format": "openvino-ir",
        "focus_folded": folded,
    }


def int8_builder(reference, calibration: CalibrationSet, work_dir: Path, io_dtype: str = "float32"):
    """A gate builder (strategy, directory) -> (INT8 IR artifact, build info) for the target registry."""
    from edgetally.converters.derive import derive, tool_versions

    def build(strategy: Strategy, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        info = quantize_openvino(reference.model_path, directory / "model.int8.xml", calibration, strategy)
        notes = [
            f"OpenVINO IR INT8 (NNCF, preset MIXED), strategy {strategy.name}; {', '.join(FLOAT_OP_TYPES)} kept float"
        ]
        artifact = derive(
            reference,
            directory,
            "model.int8.xml",
            format="openvino",
            runtime="openvino",
            precision="int8",
            notes=notes,
            tools=tool_versions("openvino", "nncf"),
        )
        return artifact, info

    return build


def fp32_fallback(reference, directory: Path):
    """OpenVINO's own FP32 IR (the --fallback model, and the 'runtime FP32' row of the latency table)."""
    from edgetally.converters.derive import FALLBACK_NOTE, derive

    directory.mkdir(parents=True, exist_ok=True)
    convert_fp32(reference.model_path, directory / "model.fp32.xml")
    return derive(
        reference,
        directory,
        "model.fp32.xml",
        format="openvino",
        runtime="openvino",
        precision="fp32",
        notes=[FALLBACK_NOTE],
    )

"""FP32 ONNX -> INT8 QDQ ONNX for onnxruntime: static, per-channel weights.

On x86 the activations are U8 and the weights S8: onnxruntime's default S8/S8 ran 2-3x *slower*
than FP32 on this class of CPU, U8/S8 runs faster (toolchain-notes). ARM boards take the same
U8/S8 QDQ model. Sensitive nodes (decode tail, optionally stem and head convs) stay float via
``nodes_to_exclude``; the strategy decides which.

Speed (measured here, YOLOX-nano 416, 1 thread, runs interleaved): the INT8 model runs at ~1.0x
FP32, not faster. The convolutions do get faster (QLinearConv ~7.5 ms vs Conv ~13 ms in ORT's
profiler) but every SiLU becomes QLinearSigmoid + QLinearMul (~8.5 ms for 104 pairs), where FP32
fuses it into one QuickGelu (~4.9 ms). Which stem convs stay float (0, 1 or 3) changes nothing
measurable; quantising only Conv (SiLU float between DQ/Q pairs) was 1.4-1.55x *slower* than FP32.
No converter or session setting changes that (benchmarks/int8_speed_probe.py, vs FP32): QOperator,
reduce_range, per-tensor weights, every conv int8 all ~1.0x; U8/U8 1.5x, S8/S8 2.8x; SiLU pre-fused
into one float QuickGelu between DQ and Q 1.1x; ``session.x64quantprecision=1`` 1.5x (it selects the
U8U8 kernels meant for CPUs without VNNI). The same INT8 graph with ReLU for SiLU runs at 0.64x: the
activations, not the convolutions, keep it from beating FP32.

The convolutions that read the image get 7-bit weights (-64..64, onnxruntime's ``reduce_range`` for
those tensors: NNCF's ``overflow_fix`` FIRST_LAYER). On an x86 CPU without VNNI, onnxruntime's U8S8
kernels add two u8 x s8 products in 16 bits with saturation; pixel codes sit near 255, so with
8-bit weights that conv overflows on that CPU only (255 x 64 x 2 fits 16 bits). Deeper layers'
inputs rarely come near 255: measured, their overflow does not move the output, and 7 bits there
were no better (docs/int8.md, "One CPU converts, another runs").
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.accuracy.strategy import Strategy
from edgetally.converters.graph.nodes import (
    head_output_convs,
    input_convs,
    name_nodes,
    stem_nodes,
    tail_nodes,
    upgrade_opset,
)
from edgetally.errors import ConversionError

# Entropy calibration with 2048 bins took >13 GB RAM here (toolchain-notes): keep histograms small.
_HISTOGRAM_BINS = 512


class _Reader:
    """onnxruntime CalibrationDataReader over a CalibrationSet."""

    def __init__(self, input_name: str, calibration: CalibrationSet) -> None:
        self._input_name = input_name
        self._batches = calibration.batches()

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {self._input_name: batch}

    def rewind(self) -> None:  # not needed by quantize_static, part of the protocol in newer releases
        pass


def prepare_fp32(source: Path, work_dir: Path) -> Path:
    """Opset >= 13, named nodes, shape-inferred copy of ``source`` (never rewrites the input file)."""
    import onnx

    model = upgrade_opset(onnx.load(str(source)))
    name_nodes(model)
    upgraded = work_dir / "fp32_opset13.onnx"
    onnx.save(model, str(upgraded))
    prepared = work_dir / "fp32_prepared.onnx"
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=False)
    except Exception:  # pre-processing is an optimisation; an unusual graph still quantises without it
        return upgraded
    return prepared


def excluded_nodes(model_path: Path, strategy: Strategy) -> list[str]:
    import onnx

    model = onnx.load(str(model_path))
    names: list[str] = []
    if strategy.keep_tail_float:
        names += tail_nodes(model)
    names += stem_nodes(model, strategy.float_stem_convs)
    if strategy.float_head_convs:
        names += head_output_convs(model)
    return list(dict.fromkeys(names))


def _calibrate_method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[name]


class OrtFold:
    """One fold's quantisation state: the prepared FP32 model, plus the activation ranges and the layer
    sensitivities measured on its calibration set -- each once, shared by every rung of the ladder."""

    SENSITIVITY_IMAGES = 8
    BIAS_IMAGES = 16

    def __init__(
        self,
        source: Path,
        calibration: CalibrationSet,
        input_name: str,
        work_dir: Path,
        symmetric_s8: bool = False,
        overflow_fix: bool = True,
    ) -> None:
        self.work = Path(work_dir) / "ort"
        self.work.mkdir(parents=True, exist_ok=True)
        self.source, self.calibration, self.input_name = source, calibration, input_name
        self.symmetric_s8 = symmetric_s8
        self.prepared = prepare_fp32(Path(source), self.work)
        import onnx

        model = onnx.load(str(self.prepared))
        # conv -> its weight tensor, for the convs whose weights get 7 bits (they read the image: module docstring)
        convs = set(input_convs(model)) if overflow_fix else set()
        self.narrow: dict[str, str] = {n.name: n.input[1] for n in model.graph.node if n.name in convs}

    def _mse_cache(self, calib: CalibrationSet) -> Path:
        from edgetally.converters.targets.ort_ranges import mse_ranges, silu_inputs, write_cache

        path = self.work / f"ranges-mse-{len(calib)}.json"
        if not path.is_file():
            write_cache(mse_ranges(self.prepared, list(calib.batches()), silu_inputs(self.prepared)), path)
        return path

    def ranges(self, strategy: Strategy, calib: CalibrationSet) -> tuple[Path, str]:
        """(calibration cache quantize_static reads or writes, its calibration method)."""
        if strategy.activation_ranges == "mse":
            return self._mse_cache(calib), "minmax"
        return self.work / f"ranges-{strategy.calibrator}-{len(calib)}.json", strategy.calibrator

    def sensitive_layers(self, count: int) -> list:
        """The ``count`` layers whose INT8 error is largest (ranked once on calibration images, MSE ranges)."""
        import json

        import onnx
        from onnxruntime.quantization.calibrate import load_tensors_data

        from edgetally.converters.graph.sensitivity import layers, rank_layers

        path = self.work / "sensitivity.json"
        if not path.is_file():
            data = load_tensors_data(self._mse_cache(self.calibration))
            ranges = {name: tuple(float(v) for v in data[name].range_value) for name in data}
            samples = list(self.calibration.subset(self.SENSITIVITY_IMAGES).batches())
            ranked = rank_layers(self.prepared, ranges, samples, narrow_weights=frozenset(self.narrow))
            path.write_text(json.dumps(ranked))
        ranked = [name for name, _ in json.loads(path.read_text())]
        by_name = {layer.name: layer for layer in layers(onnx.load(str(self.prepared)))}
        return [by_name[name] for name in ranked[:count]]

    def quantize(self, strategy: Strategy, out_path: Path) -> dict:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        calib = self.calibration if strategy.calib_count is None else self.calibration.subset(strategy.calib_count)
        exclude = excluded_nodes(self.prepared, strategy)
        sensitive = self.sensitive_layers(strategy.float_sensitive) if strategy.float_sensitive else []
        exclude = list(dict.fromkeys(exclude + [n for layer in sensitive for n in layer.nodes]))
        cache, method = self.ranges(strategy, calib)
        extra: dict = {"CalibMovingAverage": False, "ActivationSymmetric": self.symmetric_s8, "WeightSymmetric": True}
        narrowed = [name for name in self.narrow if name not in exclude]
        if narrowed:
            extra["TensorQuantOverrides"] = {
                self.narrow[name]: [{"reduce_range": True, "axis": 0}] for name in narrowed
            }
        if method in ("percentile", "entropy"):
            extra.update({"CalibNumBins": _HISTOGRAM_BINS, "CalibPercentile": 99.99})
        try:
            quantize_static(
                str(self.prepared),
                str(out_path),
                _Reader(self.input_name, calib),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8 if self.symmetric_s8 else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=_calibrate_method(method),
                nodes_to_exclude=exclude,
                extra_options=extra,
                calibration_cache_path=str(cache),
            )
        except Exception as exc:  # onnxruntime raises untyped errors for unsupported graphs
            raise ConversionError(f"{self.source}: onnxruntime static quantisation failed: {exc}") from exc
        info = {
            "nodes_excluded": exclude,
            "float_layers": float_layers(self.prepared, exclude),
            "sensitive_layers": [layer.name for layer in sensitive],
            "calibration_images": len(calib),
            "activation_ranges": "mse" if strategy.activation_ranges == "mse" else method,
            "activations": "s8 symmetric" if self.symmetric_s8 else "u8",
            "weights": "s8 per-channel",
            "weights_7bit": narrowed,  # the convs that read the image (no 16-bit overflow without VNNI)
            "format": "QDQ",
            "opset": 13,
        }
        if strategy.bias_correction:
            from edgetally.converters.targets.ort_bias import correct_biases

            info.update(correct_biases(out_path, self.prepared, list(calib.subset(self.BIAS_IMAGES).batches())))
        return info


def float_layers(model_path: Path, exclude: list[str]) -> list[str]:
    """The weighted ops among ``exclude`` (what costs speed), plus one entry for the float decode tail."""
    import onnx

    from edgetally.converters.graph.nodes import WEIGHTED_OPS

    model = onnx.load(str(model_path))
    excluded = set(exclude)
    weighted = [n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS and n.name in excluded]
    tail = [n for n in tail_nodes(model) if n in excluded]
    return weighted + ([f"decode tail ({len(tail)} nodes)"] if tail else [])


def quantize_onnx(
    source: Path,
    out_path: Path,
    calibration: CalibrationSet,
    strategy: Strategy,
    input_name: str,
    symmetric_s8: bool = False,
    overflow_fix: bool = True,
) -> dict:
    """One-off quantisation (a fold's builder keeps an ``OrtFold`` instead, to measure things once)."""
    with tempfile.TemporaryDirectory(prefix="edge-ort-int8-") as tmp:
        fold = OrtFold(source, calibration, input_name, Path(tmp), symmetric_s8, overflow_fix)
        return fold.quantize(strategy, out_path)


def int8_builder(
    reference,
    calibration: CalibrationSet,
    work_dir: Path,
    io_dtype: str = "float32",
    symmetric_s8: bool = False,
    runtime: str = "onnxruntime",
    format: str = "onnx",
    overflow_fix: bool = True,
):
    """A gate builder (strategy, directory) -> (INT8 QDQ artifact, build info) for the target registry."""
    from edgetally.converters.derive import derive, tool_versions

    fold = OrtFold(
        reference.model_path, calibration, reference.manifest.input.name, work_dir, symmetric_s8, overflow_fix
    )

    def build(strategy: Strategy, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        info = fold.quantize(strategy, directory / "model.int8.onnx")
        notes = [f"INT8 QDQ (onnxruntime quantize_static), strategy {strategy.name}"]
        if info["weights_7bit"]:
            notes.append(
                f"weights of {', '.join(info['weights_7bit'])} (reading the image) on 7 bits: "
                "no 16-bit overflow on x86 CPUs without VNNI"
            )
        artifact = derive(
            reference,
            directory,
            "model.int8.onnx",
            format=format,
            runtime=runtime,
            precision="int8",
            notes=notes,
            tools=tool_versions("onnx", "onnxruntime"),
        )
        return artifact, info

    return build


def fp32_fallback(reference, directory: Path, runtime: str = "onnxruntime", format: str = "onnx"):
    """The FP32 ONNX itself (shipped only on --fallback, or when INT8 is slower and the profile says so)."""
    import shutil

    from edgetally.converters.derive import FALLBACK_NOTE, derive

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(reference.model_path, directory / "model.fp32.onnx")
    return derive(
        reference, directory, "model.fp32.onnx", format=format, runtime=runtime, precision="fp32", notes=[FALLBACK_NOTE]
    )

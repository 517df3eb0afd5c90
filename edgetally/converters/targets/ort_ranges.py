"""Activation ranges for onnxruntime's quantiser: MSE-optimal ranges, and every tensor's values on demand.

onnxruntime's calibrators give min/max (at the mercy of the single most extreme calibration image),
percentile or entropy (histograms that took minutes and >13 GB at 2048 bins here). The MSE range
(edgetally.converters.targets.tflite_ranges.mse_range, shared with the TFLite path) minimises the
expected INT8 error -- rounding inside the range, clipping outside -- on a histogram of every
calibration value; for a tensor read only by SiLU the error is measured on SiLU's output. The
ranges are handed to ``quantize_static`` as its calibration cache (``calibration_cache_path``), which
it reads instead of calibrating, so the quantiser itself is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HISTOGRAM_BINS = 1024


def tapped_session(model_path: Path, names: Sequence[str] | None = None, threads: int = 1) -> tuple[Any, list[str]]:
    """An onnxruntime session that also outputs the named float tensors (default: every node output)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    existing = {o.name for o in model.graph.output}
    wanted = (
        list(names)
        if names is not None
        else [model.graph.input[0].name] + [out for node in model.graph.node for out in node.output if out]
    )
    floats = _float_tensors(model)
    taps = [n for n in dict.fromkeys(wanted) if n in floats]
    for name in taps:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # no fusions: a tapped tensor must be the value the unfused graph computes
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]), taps


def _float_tensors(model: Any) -> set[str]:
    import onnx
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    typed = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    return {v.name for v in typed if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}


def tensor_values(session: Any, names: Sequence[str], batches: Iterator[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """{tensor name: value} for each calibration batch."""
    feed = session.get_inputs()[0].name
    for batch in batches:
        yield dict(zip(names, session.run(list(names), {feed: batch}), strict=True))


def mse_ranges(model_path: Path, batches: list[np.ndarray], silu_inputs: frozenset = frozenset()) -> dict[str, tuple]:
    """Tensor name -> (low, high) MSE-optimal over every calibration value (two passes: min/max, histogram)."""
    from edgetally.converters.targets.tflite_ranges import mse_range

    session, names = tapped_session(model_path)
    low = {n: np.inf for n in names}
    high = {n: -np.inf for n in names}
    for values in tensor_values(session, names, iter(batches)):
        for name, value in values.items():
            low[name], high[name] = min(low[name], float(value.min())), max(high[name], float(value.max()))
    spans = {n: (low[n], high[n]) for n in names if high[n] > low[n]}
    counts = {n: np.zeros(HISTOGRAM_BINS, np.int64) for n in spans}
    for values in tensor_values(session, list(spans), iter(batches)):
        for name, value in values.items():
            counts[name] += np.histogram(value, HISTOGRAM_BINS, spans[name])[0]
    ranges = {n: mse_range(counts[n], *spans[n], silu=n in silu_inputs) for n in spans}
    ranges.update({n: (low[n], high[n]) for n in names if n not in spans and np.isfinite(low[n])})
    return ranges


def write_cache(ranges: dict[str, tuple], path: Path) -> Path:
    """Save ``ranges`` as onnxruntime's min/max calibration cache (what quantize_static reads back)."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData, save_tensors_data

    data = {name: (np.float32(lo), np.float32(hi)) for name, (lo, hi) in ranges.items()}
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), path)
    return path


def silu_inputs(model_path: Path) -> frozenset:
    """Tensors read only by a SiLU (x * Sigmoid(x)): their range error is measured on SiLU's output."""
    import onnx

    from edgetally.converters.graph.activations import silu_pairs

    model = onnx.load(str(model_path))
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    return frozenset(gate.input[0] for gate, _mul in silu_pairs(model) if readers.get(gate.input[0]) == 2)

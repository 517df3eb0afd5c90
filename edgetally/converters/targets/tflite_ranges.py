"""Activation ranges for ai-edge-quantizer beyond its default: global min/max, MSE ranges, grid clips.

Full-integer INT8 gives every activation tensor ONE scale, (max - min) / 255, so a range wider
than the values that matter costs resolution everywhere in that tensor. Standard fixes, measured on
YOLOX-nano (edgetally.converters.targets.tflite_full_int):

* Global min/max. ai-edge-quantizer's default calibrator keeps a moving average (factor 0.95) of
  each image's min/max: the range depends on the image ORDER and sits below the largest values
  seen. The textbook min/max calibrator takes the min/max over all calibration images.
* MSE ranges. Min/max over all images is at the mercy of the single most extreme image (measured:
  swapping which half of coco128 calibrates moved YOLOX-nano's drop from -0.2 to 4.3 points), the
  moving average at the mercy of the image order. The range that minimises the expected quantisation
  error (rounding inside, clipping outside) on a histogram of every calibration value over the global
  min/max is the standard robust choice (NNCF/OpenVINO, AIMET and TensorRT offer it). For a tensor
  read only by SiLU the error is measured on SiLU's output, where it matters.
* Grid clips. A conv output feeding SiLU = x * sigmoid(x) often reaches -30..-70 (folded batch
  norm), yet for x < -L SiLU(x) lies in [SiLU(-L), 0). Choosing L so that |SiLU(-L)| is at most
  half a step of the SiLU output's own INT8 grid, clipping the conv output at -L moves no SiLU
  output by more than that half step -- the output grid cannot see it -- while the conv output
  (and the sigmoid's input) gets a finer scale. Likewise logits read only by a sigmoid are clipped
  where the sigmoid's fixed 1/256 output grid saturates. Derived from the grids, not tuned.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

# x * sigmoid(x) is decreasing on (-inf, SILU_ARGMIN] and increasing after it; SiLU(SILU_ARGMIN) = -0.2785.
SILU_ARGMIN = -1.2784645


def silu_floor(step: float) -> float:
    """The smallest L >= 1.278 with |SiLU(-L)| = L * sigmoid(-L) <= step / 2 (bisection: monotone there)."""

    def magnitude(length: float) -> float:
        return length / (1.0 + math.exp(length))

    low, high = -SILU_ARGMIN, 100.0
    if magnitude(low) <= step / 2:
        return low
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if magnitude(middle) > step / 2 else (low, middle)
    return high


def _silu_mul(graph: Any, op: dict) -> dict | None:
    """The MUL of SiLU(x) = x * LOGISTIC(x) when ``op`` is that LOGISTIC and x feeds nothing else."""
    x, sig = int(op["inputs"][0]), int(op["outputs"][0])
    consumers = graph.consumers.get(x, [])
    muls = [c for c in consumers if c["op_name"] == "MUL" and {x, sig} == {int(t) for t in c["inputs"]}]
    return muls[0] if len(consumers) == 2 and len(muls) == 1 else None


def silu_inputs(graph: Any) -> frozenset:
    """Names of the tensors read only by a SiLU (x * LOGISTIC(x)): typically every conv output of the body."""
    return frozenset(
        graph.names[int(op["inputs"][0])]
        for op in graph.ops
        if op["op_name"] == "LOGISTIC" and _silu_mul(graph, op) is not None
    )


def floor_silu_ranges(qsv: dict, graph: Any) -> dict:
    """Raise the calibrated min of every SiLU input to -silu_floor(SiLU output step); -> summary for report.json.

    graph: edgetally.converters.targets.tflite.TflGraph of the FP32 model; qsv: ai-edge-quantizer's calibration result.
    """
    floored, widths = 0, []
    for op in graph.ops:
        mul = _silu_mul(graph, op) if op["op_name"] == "LOGISTIC" else None
        stats, out = (
            (qsv.get(graph.names[int(op["inputs"][0])]), qsv.get(graph.output_name(mul))) if mul else (None, None)
        )
        if not stats or not out:
            continue
        high = float(np.max(out["max"]))
        step = (high - min(float(np.min(out["min"])), 0.0)) / 255.0
        floor = -silu_floor(step)
        low, top = float(np.min(stats["min"])), float(np.max(stats["max"]))
        if low < floor < top:  # a tensor entirely below its floor keeps its range
            stats["min"] = np.maximum(np.asarray(stats["min"], dtype=np.float32), np.float32(floor))
            widths.append((top - low) / max(top - floor, 1e-9))
            floored += 1
    return {
        "silu_floors": floored,
        "silu_floor_range_shrink_median": round(float(np.median(widths)), 3) if widths else 1.0,
    }


# TFLite's int8 LOGISTIC always writes scale 1/256, zero point -128.
LOGISTIC_STEP = 1.0 / 256.0


def clip_sigmoid_logits(qsv: dict, graph: Any) -> dict:
    """Clip every tensor read ONLY by LOGISTIC (a detector's class/objectness logits) to +-ln(2 / step - 1):
    beyond that the sigmoid is within half an output step of 0 or 1, so its INT8 output cannot change."""
    limit = math.log(2.0 / LOGISTIC_STEP - 1.0)
    clipped = 0
    for op in graph.ops:
        tensor = int(op["inputs"][0]) if op["op_name"] == "LOGISTIC" else None
        if tensor is None or any(c["op_name"] != "LOGISTIC" for c in graph.consumers.get(tensor, [])):
            continue
        stats = qsv.get(graph.names[tensor])
        low, high = (float(np.min(stats["min"])), float(np.max(stats["max"]))) if stats else (0.0, 0.0)
        if (low < -limit or high > limit) and max(low, -limit) < min(high, limit):
            stats["min"] = np.maximum(np.asarray(stats["min"], dtype=np.float32), np.float32(-limit))
            stats["max"] = np.minimum(np.asarray(stats["max"], dtype=np.float32), np.float32(limit))
            clipped += 1
    return {"sigmoid_logits_clipped": clipped}


def calibrate_global_minmax(fp32_tflite: Path, recipe: Any, data: dict, num_threads: int = 2) -> dict:
    """ai-edge-quantizer calibration with min/max over ALL samples (its calibrator's min_max_update)
    instead of the default moving average of per-sample min/max. recipe: Quantizer.get_quantization_recipe()."""
    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(recipe)
    calib = calibrator.Calibrator(
        Path(fp32_tflite).read_bytes(), num_threads=num_threads, qsv_update_func=qsv_utils.min_max_update
    )
    calib.calibrate(data, manager)
    return calib.get_model_qsvs()


HISTOGRAM_BINS = 2048
# Candidate clipped ends, as fractions of the calibrated min and max.
_SHRINK = np.linspace(0.25, 1.0, 31)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _silu_slope(x: np.ndarray) -> np.ndarray:
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig * (1.0 + x * (1.0 - sig))


def mse_range(
    counts: np.ndarray, low: float, high: float, levels: int = 255, silu: bool = False
) -> tuple[float, float]:
    """(low', high') within [low, high] minimising the expected INT8 error of values histogrammed in ``counts``
    (equal bins over [low, high]): step**2 / 12 rounding error inside the range, squared distance outside.

    silu: the tensor only feeds SiLU, so the error is measured where it matters, on SiLU's output
    (rounding error scaled by SiLU's slope, clipping error as SiLU(x) - SiLU(clipped x))."""
    centres = low + (np.arange(len(counts)) + 0.5) * (high - low) / len(counts)
    weights = counts / max(float(counts.sum()), 1.0)
    apply, slope = (_silu, _silu_slope) if silu else (lambda x: x, np.ones_like)
    best = (np.inf, low, high)
    for lo in low * _SHRINK if low < 0 else [low]:
        his = high * _SHRINK if high > 0 else np.array([high])
        clipped = np.clip(centres[None, :], lo, his[:, None])
        inside = clipped == centres[None, :]
        rounding = ((his - lo) / levels) ** 2 / 12
        error = (apply(centres)[None, :] - apply(clipped)) ** 2 + inside * rounding[:, None] * slope(centres)[
            None, :
        ] ** 2
        mse = (error * weights[None, :]).sum(axis=1)
        k = int(np.argmin(mse))
        if mse[k] < best[0]:
            best = (float(mse[k]), float(lo), float(his[k]))
    return best[1], best[2]


def _histograms(fp32_tflite: Path, ranges: dict[str, tuple[float, float]], samples: list) -> dict[str, np.ndarray]:
    """Histograms (HISTOGRAM_BINS equal bins over each tensor's range) of every named tensor over ``samples``."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(fp32_tflite), experimental_preserve_all_tensors=True, num_threads=2)
    interpreter.allocate_tensors()
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    source = interpreter.get_input_details()[0]["index"]
    counts = {name: np.zeros(HISTOGRAM_BINS, np.int64) for name in ranges if name in index}
    for sample in samples:
        interpreter.set_tensor(source, np.ascontiguousarray(sample))
        interpreter.invoke()
        for name in counts:
            counts[name] += np.histogram(interpreter.get_tensor(index[name]), HISTOGRAM_BINS, ranges[name])[0]
    return counts


def mse_ranges(
    qsv: dict, fp32_tflite: Path, samples: list, skip: list[str] = (), silu_inputs: frozenset = frozenset()
) -> dict:
    """Replace each activation's (global) min/max in ``qsv`` by its MSE-optimal range; -> summary for report.json.

    samples: the calibration inputs, as fed to the FP32 model; skip: tensors to leave alone (the model input);
    silu_inputs: tensors read only by SiLU, whose error is measured on SiLU's output (see mse_range)."""
    ranges = {
        name: (float(np.min(s["min"])), float(np.max(s["max"])))
        for name, s in qsv.items()
        if "min" in s and "max" in s and name not in skip
    }
    ranges = {name: r for name, r in ranges.items() if r[1] > r[0]}
    shrink = []
    for name, counts in _histograms(fp32_tflite, ranges, samples).items():
        low, high = mse_range(counts, *ranges[name], silu=name in silu_inputs)
        stats = qsv[name]
        stats["min"] = np.full_like(np.asarray(stats["min"], dtype=np.float32), low)
        stats["max"] = np.full_like(np.asarray(stats["max"], dtype=np.float32), high)
        shrink.append((ranges[name][1] - ranges[name][0]) / (high - low))
    return {"mse_ranges": len(shrink), "mse_range_shrink_median": round(float(np.median(shrink)), 3) if shrink else 1.0}

"""Which INT8 conversion or runtime setting moves YOLOX-nano's 1-thread latency vs onnxruntime FP32.

    .venv/bin/python -m benchmarks.int8_speed_probe [--runs 200] [--calib-count 32]

Builds every variant from ../shared/data/models/yolox_nano.onnx (min/max calibration on coco128
images: latency does not depend on the calibration method or on which images), then times all of
them at 1 thread in ONE process, runs interleaved, with the runner's session / compile options
(edgetally/runtimes/onnxruntime.py, edgetally/runtimes/openvino.py) plus the setting under test. Speed only:
accuracy is benchmarks/convert_bench.py's job. Rows named "diagnostic" change the model and are
not deployable as they are (edge convert --activation retrains them): "SiLU->ReLU" shows what the
convolutions alone cost, "SiLU->HardSwish" what OpenVINO's fused HSwish post-op costs; "SiLU as one float QuickGelu"
is the best layout of "keep the activations float" that ORT can run (its quantiser leaves Sigmoid
and Mul apart and ORT then gives each its own DequantizeLinear, so they never fuse); "SiLU clamped
>= 0" shows what the activation zero point costs OpenVINO. Writes
benchmarks/results/int8_speed_probe.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco" / "coco128_train2017"
MODEL = ROOT.parent / "shared" / "data" / "models" / "yolox_nano.onnx"

# name -> quantize_static overrides of the shipped setting (QDQ, U8 activations / S8 per-channel
# weights, decode tail and 3 stem convs float).
ORT_VARIANTS: dict[str, dict] = {
    "ORT INT8 QDQ U8/S8 per-channel (shipped)": {},
    "ORT INT8 QOperator": {"quant_format": "QOperator"},
    "ORT INT8 reduce_range": {"reduce_range": True},
    "ORT INT8 per-tensor weights": {"per_channel": False},
    "ORT INT8 U8/U8": {"weight_type": "QUInt8"},
    "ORT INT8 S8/S8": {"activation_type": "QInt8"},
    "ORT INT8 Conv only (SiLU float)": {"op_types_to_quantize": ["Conv"]},
    "ORT INT8 every conv int8 (no float stem)": {"float_stem_convs": 0},
}
# name -> (built model, session config entries / graph optimisation level)
ORT_SESSION_VARIANTS: dict[str, tuple[str, dict]] = {
    "ORT INT8 + session.x64quantprecision=1": (
        "ORT INT8 QDQ U8/S8 per-channel (shipped)",
        {"session.x64quantprecision": "1"},
    ),
    "ORT INT8 + ORT_ENABLE_EXTENDED": ("ORT INT8 QDQ U8/S8 per-channel (shipped)", {"level": "extended"}),
    "ORT FP32 + ORT_ENABLE_EXTENDED": ("ORT FP32", {"level": "extended"}),
}
# name -> nncf.quantize overrides of the shipped setting (MIXED preset, decode tail and depthwise convs float).
NNCF_VARIANTS: dict[str, dict] = {
    "OV INT8 NNCF MIXED (shipped)": {},
    "OV INT8 NNCF PERFORMANCE": {"preset": "PERFORMANCE"},
    "OV INT8 NNCF target_device=CPU": {"target_device": "CPU"},
    "OV INT8 NNCF fast_bias_correction=False": {"fast_bias_correction": False},
    "OV INT8 NNCF depthwise convs INT8 (before 2026-12-05)": {"ignored_types": []},
    "OV INT8 NNCF depthwise convs INT8, PERFORMANCE": {"ignored_types": [], "preset": "PERFORMANCE"},
    "OV INT8 NNCF decode tail quantised too": {"keep_tail_float": False},
    "OV INT8 NNCF MIXED, Focus stem not folded (before 2026-12-03)": {"fold_focus": False},
}
# `edge convert --activation-share` values timed (0.7 is the default; 0.85 replaces one more resolution level)
ACTIVATION_SHARES = (0.7, 0.85)
# name -> (built model, extra CPU plugin properties on top of the runner's compile_config)
OV_PROPERTY_VARIANTS: dict[str, tuple[str, dict]] = {
    "OV INT8 + INFERENCE_PRECISION_HINT=f32": ("OV INT8 NNCF MIXED (shipped)", {"INFERENCE_PRECISION_HINT": "f32"}),
    "OV INT8 + ENABLE_CPU_PINNING": ("OV INT8 NNCF MIXED (shipped)", {"ENABLE_CPU_PINNING": "YES"}),
    "OV INT8 + CPU_DENORMALS_OPTIMIZATION": ("OV INT8 NNCF MIXED (shipped)", {"CPU_DENORMALS_OPTIMIZATION": "YES"}),
}


def rewrite_silu(source: Path, out: Path, to: str, share: float = 1.0) -> int:
    """Copy with every x * Sigmoid(x) (or, share < 1, those on the largest maps, as ``edge convert
    --activation-share`` picks them) replaced by ``Relu``, ``HardSwish`` or ORT's fused ``QuickGelu``."""
    import onnx

    from edgetally.converters.graph.activations import largest_maps, replace_silu, silu_sizes

    model = onnx.load(str(source))
    if share < 1.0:
        model, names = replace_silu(model, to, only=largest_maps(silu_sizes(model), share))
    elif to == "QuickGelu":  # x * sigmoid(alpha * x), one pass over memory
        model, names = replace_silu(model, "QuickGelu", domain="com.microsoft")
        for node in model.graph.node:
            if node.name in set(names):
                node.attribute.append(onnx.helper.make_attribute("alpha", 1.0))
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    else:
        model, names = replace_silu(model, to)
    onnx.save(model, str(out))
    return len(names)


def clamp_silu(source: Path, out: Path) -> int:
    """Diagnostic copy with a Relu after every SiLU: NNCF then quantises it unsigned with zero point 0."""
    import onnx

    model = onnx.load(str(source))
    sigmoid = {n.output[0]: n for n in model.graph.node if n.op_type == "Sigmoid"}
    nodes = []
    for node in model.graph.node:
        nodes.append(node)
        gate = sigmoid.get(node.input[1]) if node.op_type == "Mul" and len(node.input) == 2 else None
        if gate is not None and gate.input[0] == node.input[0]:
            output = node.output[0]
            node.output[0] = f"{output}_silu"
            nodes.append(onnx.helper.make_node("Relu", [f"{output}_silu"], [output], name=f"{node.name}_clamp"))
    added = len(nodes) - len(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(out))
    return added


def ort_int8(source: Path, out: Path, calibration, input_name: str, overrides: dict) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from edgetally.converters.accuracy.strategy import Strategy
    from edgetally.converters.targets.onnxruntime import _Reader, excluded_nodes, prepare_fp32

    options = dict(overrides)
    strategy = Strategy("probe", float_stem_convs=options.pop("float_stem_convs", 3))
    with tempfile.TemporaryDirectory(prefix="int8-probe-") as tmp:
        prepared = prepare_fp32(source, Path(tmp))
        quantize_static(
            str(prepared),
            str(out),
            _Reader(input_name, calibration),
            quant_format=QuantFormat[options.pop("quant_format", "QDQ")],
            per_channel=options.pop("per_channel", True),
            reduce_range=options.pop("reduce_range", False),
            activation_type=QuantType[options.pop("activation_type", "QUInt8")],
            weight_type=QuantType[options.pop("weight_type", "QInt8")],
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded_nodes(prepared, strategy),
            op_types_to_quantize=options.pop("op_types_to_quantize", None),
            extra_options={"CalibMovingAverage": False, "ActivationSymmetric": False, "WeightSymmetric": True},
        )
    return out


def nncf_int8(source: Path, out_xml: Path, calibration, overrides: dict) -> Path:
    import logging

    import nncf
    import openvino as ov

    from edgetally.converters.targets.openvino import FLOAT_OP_TYPES, read_onnx, stem_ops, tail_ops

    nncf.set_log_level(logging.WARNING)
    # as shipped, every OpenVINO build reads the ONNX with its Focus stem folded into one convolution
    model = read_onnx(source)[0] if overrides.get("fold_focus", True) else ov.convert_model(str(source))
    ignored = tail_ops(model) if overrides.get("keep_tail_float", True) else []
    ignored += stem_ops(model, overrides.get("float_stem_convs", 0))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(calibration.batches())),
        subset_size=len(calibration),
        preset=nncf.QuantizationPreset[overrides.get("preset", "MIXED")],
        target_device=nncf.TargetDevice[overrides.get("target_device", "ANY")],
        fast_bias_correction=overrides.get("fast_bias_correction", True),
        ignored_scope=nncf.IgnoredScope(
            names=ignored, types=overrides.get("ignored_types", list(FLOAT_OP_TYPES)), validate=False
        ),
    )
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    return out_xml


def fold(source: Path, out: Path) -> Path:
    """The model as the OpenVINO builds read it (Focus stem folded), to time FP32 on the same graph."""
    import onnx

    from edgetally.converters.graph.focus_fold import fold_focus

    model = onnx.load(str(source))
    fold_focus(model)
    onnx.save(model, str(out))
    return out


def ort_runner(path: Path, config: dict, tensor: np.ndarray) -> Callable[[], object]:
    """A session built as edgetally/runtimes/onnxruntime.py builds it, at 1 thread, plus ``config``."""
    import onnxruntime as ort

    from edgetally.runtimes.onnxruntime import session_options

    options = session_options(threads=1)
    level = config.get("level", "all")
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    for key, value in config.items():
        if key != "level":
            options.add_session_config_entry(key, value)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: tensor})


def ov_runner(path: Path, precision: str, extra: dict, tensor: np.ndarray) -> Callable[[], object]:
    """A compiled model with the runner's compile_config at 1 thread, plus ``extra`` properties."""
    import openvino as ov

    from edgetally.runtimes.openvino import compile_config

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {**compile_config(precision, 1), **extra})
    request = compiled.create_infer_request()
    return lambda: request.infer({0: tensor}, share_inputs=True)


def time_interleaved(runners: dict[str, Callable[[], object]], runs: int, warmup: int = 5) -> dict[str, float]:
    """p50 ms per runner; the order alternates every round so load bursts hit every model alike."""
    names = list(runners)
    times: dict[str, list[float]] = {n: [] for n in names}
    for step in range(warmup + runs):
        for name in names if step % 2 == 0 else reversed(names):
            start = time.perf_counter()
            runners[name]()
            if step >= warmup:
                times[name].append((time.perf_counter() - start) * 1000.0)
    return {n: round(float(np.percentile(t, 50)), 3) for n, t in times.items()}


def build_all(work: Path, calib_count: int, log: Callable[[str], None]) -> tuple[dict, dict]:
    """Every model file: ``onnx`` maps row name -> .onnx for ORT, ``ir`` row name -> (.xml, precision)."""
    from edgetally.converters.accuracy.calibration import load_calibration
    from edgetally.converters.package import package_fp32
    from edgetally.converters.targets.openvino import convert_fp32

    reference = package_fp32(MODEL, work / "fp32", "yolox", 416, "coco80")
    source = reference.model_path
    calibration = load_calibration(COCO / "images", reference.manifest.input, calib_count)
    input_name = reference.manifest.input.name
    onnx: dict[str, Path] = {"ORT FP32": source, "ORT FP32, Focus stem folded": fold(source, work / "folded.onnx")}
    for index, (name, overrides) in enumerate(ORT_VARIANTS.items()):
        log(f"building {name}")
        onnx[name] = ort_int8(source, work / f"ort{index}.onnx", calibration, input_name, overrides)
    for to in ("QuickGelu", "Relu", "HardSwish"):
        rewrite_silu(source, work / f"{to}.onnx", to)
    onnx["diagnostic: ORT FP32 SiLU->ReLU"] = work / "Relu.onnx"
    log("building the SiLU diagnostics")
    onnx["diagnostic: ORT INT8 SiLU as one float QuickGelu"] = ort_int8(
        work / "QuickGelu.onnx", work / "qg8.onnx", calibration, input_name, {}
    )
    onnx["diagnostic: ORT INT8 SiLU->ReLU"] = ort_int8(
        work / "Relu.onnx", work / "relu8.onnx", calibration, input_name, {}
    )
    onnx["diagnostic: ORT INT8 SiLU->HardSwish"] = ort_int8(
        work / "HardSwish.onnx", work / "hswish8.onnx", calibration, input_name, {}
    )
    convert_fp32(source, work / "ov_fp32.xml")
    ir: dict[str, tuple[Path, str]] = {
        "OV FP32 (f32 hint)": (work / "ov_fp32.xml", "fp32"),
        "OV FP32 (plugin default precision)": (work / "ov_fp32.xml", "int8"),
    }
    for index, (name, overrides) in enumerate(NNCF_VARIANTS.items()):
        log(f"building {name}")
        ir[name] = (nncf_int8(source, work / f"ov{index}.xml", calibration, overrides), "int8")
    ir["diagnostic: OV INT8 SiLU->ReLU"] = (
        nncf_int8(work / "Relu.onnx", work / "ov_relu.xml", calibration, {}),
        "int8",
    )
    ir["diagnostic: OV INT8 SiLU->HardSwish"] = (
        nncf_int8(work / "HardSwish.onnx", work / "ov_hswish.xml", calibration, {}),
        "int8",
    )
    # What `edge convert --activation` ships for OpenVINO: HardSwish on the largest maps, stem float (the
    # weights of an untrained replacement time the same as a distilled student's).
    for share in ACTIVATION_SHARES:
        replaced = rewrite_silu(source, work / f"hswish{share}.onnx", "HardSwish", share)
        for stem in (3, 0):
            name = f"OV INT8 --activation-share {share:g} ({replaced} SiLU -> HardSwish), stem {'float' if stem else 'INT8'}"
            log(f"building {name}")
            xml = work / f"ov_hswish{share}_{stem}.xml"
            ir[name] = (nncf_int8(work / f"hswish{share}.onnx", xml, calibration, {"float_stem_convs": stem}), "int8")
    old = {"float_stem_convs": 3, "ignored_types": []}
    name = f"OV INT8 --activation-share {ACTIVATION_SHARES[0]:g}, stem float, depthwise convs INT8 (before 2026-12-05)"
    ir[name] = (
        nncf_int8(work / f"hswish{ACTIVATION_SHARES[0]}.onnx", work / "ov_hswish_dw8.xml", calibration, old),
        "int8",
    )
    clamp_silu(source, work / "clamped.onnx")
    ir["diagnostic: OV INT8 SiLU clamped >= 0 (unsigned, zero point 0)"] = (
        nncf_int8(work / "clamped.onnx", work / "ov_clamped.xml", calibration, {}),
        "int8",
    )
    return onnx, ir


def runners_for(onnx: dict, ir: dict, tensor: np.ndarray) -> dict[str, Callable[[], object]]:
    runners = {name: ort_runner(path, {}, tensor) for name, path in onnx.items()}
    for name, (model, config) in ORT_SESSION_VARIANTS.items():
        runners[name] = ort_runner(onnx[model], config, tensor)
    for name, (path, precision) in ir.items():
        # "int8" precision = compile_config without a precision hint, as the runner does for INT8 artifacts
        runners[name] = ov_runner(path, precision, {}, tensor)
    for name, (model, extra) in OV_PROPERTY_VARIANTS.items():
        runners[name] = ov_runner(ir[model][0], "int8", extra, tensor)
    return runners


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per model (1 thread, interleaved)")
    parser.add_argument("--calib-count", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "int8_speed_probe.json")
    args = parser.parse_args(argv)
    if not MODEL.is_file():
        print(f"{MODEL} not found: the probe needs ../shared/data", file=sys.stderr)
        return 2
    from edgetally.cpu import describe_cpu

    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    tensor = np.random.default_rng(0).uniform(0, 255, (1, 3, 416, 416)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="int8-probe-") as tmp:
        onnx, ir = build_all(Path(tmp), args.calib_count, log)
        log(f"timing {len(onnx) + len(ir) + len(ORT_SESSION_VARIANTS) + len(OV_PROPERTY_VARIANTS)} models")
        p50 = time_interleaved(runners_for(onnx, ir, tensor), args.runs)
    base = p50["ORT FP32"]
    rows = {name: {"p50_ms": ms, "ratio_vs_ort_fp32": round(ms / base, 3)} for name, ms in p50.items()}
    result = {
        "model": MODEL.name,
        "threads": 1,
        "runs": args.runs,
        "target_ratio": 0.7,
        "note": "infer only, random 0-255 frame, all models interleaved in one process",
        "cpu": describe_cpu(),
        "rows": rows,
    }
    for name, row in rows.items():
        print(f"{row['ratio_vs_ort_fp32']:6.3f}  {row['p50_ms']:7.2f} ms  {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""OpenVINO INT8 with YOLOX-nano's depthwise convolutions INT8 or float: 1-thread latency vs onnxruntime FP32.

    .venv/bin/python -m benchmarks.openvino_depthwise [--runs 150] [--rounds 2]

`edge convert` keeps every depthwise (grouped) convolution float in its OpenVINO INT8 builds
(edgetally.converters.targets.openvino.FLOAT_OP_TYPES). This times that choice on the machine it runs
on, for the SiLU model (the default recipe) and for the `--activation` recipe (HardSwish on the
largest maps, stem float), each with its depthwise convolutions INT8 and float.

Why not just the speed probe's rows: with its ~38 models compiled in one process, two compiles of
the same IR timed up to 17 % apart on a 2-core Xeon with AMX. Here each IR is compiled twice, the
models are timed interleaved in rounds, and the whole is repeated with the compile order reversed;
the spread between the two compiles of one IR says how far the figures can be trusted.
Writes benchmarks/results/openvino_depthwise.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.int8_speed_probe import (
    COCO,
    MODEL,
    ROOT,
    nncf_int8,
    ort_runner,
    ov_runner,
    rewrite_silu,
    time_interleaved,
)

ACTIVATION_SHARE = 0.7  # edge convert --activation-share's default
STEM_FLOAT = 3  # the activation recipe's shipped rung keeps the stem convolutions float


def build(work: Path, calib_count: int) -> tuple[Path, dict[str, Path]]:
    """-> (FP32 ONNX, row name -> INT8 IR) for the four variants."""
    from edgetally.converters.accuracy.calibration import load_calibration
    from edgetally.converters.package import package_fp32

    reference = package_fp32(MODEL, work / "fp32", "yolox", 416, "coco80")
    source = reference.model_path
    calibration = load_calibration(COCO / "images", reference.manifest.input, calib_count)
    hardswish = work / "hardswish.onnx"
    rewrite_silu(source, hardswish, "HardSwish", ACTIVATION_SHARE)
    variants = {
        "SiLU model, depthwise INT8": (source, {"ignored_types": []}),
        "SiLU model, depthwise float (shipped)": (source, {}),
        "activation recipe, depthwise INT8": (hardswish, {"float_stem_convs": STEM_FLOAT, "ignored_types": []}),
        "activation recipe, depthwise float (shipped)": (hardswish, {"float_stem_convs": STEM_FLOAT}),
    }
    built = {}
    for index, (name, (model, overrides)) in enumerate(variants.items()):
        print(f"building {name}", file=sys.stderr)
        built[name] = nncf_int8(model, work / f"variant{index}.xml", calibration, overrides)
    return source, built


def time_both_orders(source: Path, built: dict[str, Path], runs: int, rounds: int) -> dict[str, list[float]]:
    """Row name -> ratios to ORT FP32, one per (order, round, compile)."""
    tensor = np.random.default_rng(0).uniform(0, 255, (1, 3, 416, 416)).astype(np.float32)
    ratios: dict[str, list[float]] = {name: [] for name in built}
    for order in (list(built), list(reversed(built))):
        runners = {"ORT FP32": ort_runner(source, {}, tensor)}
        for compile_index in (1, 2):
            runners.update({f"{name} #{compile_index}": ov_runner(built[name], "int8", {}, tensor) for name in order})
        for _ in range(rounds):
            p50 = time_interleaved(runners, runs)
            for key, ms in p50.items():
                if key != "ORT FP32":
                    ratios[key.rsplit(" #", 1)[0]].append(round(ms / p50["ORT FP32"], 3))
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=150, help="timed runs per model and round (1 thread)")
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds per compile order")
    parser.add_argument("--calib-count", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "openvino_depthwise.json")
    args = parser.parse_args(argv)
    if not MODEL.is_file():
        print(f"{MODEL} not found: the benchmark needs ../shared/data", file=sys.stderr)
        return 2
    from edgetally.cpu import describe_cpu

    with tempfile.TemporaryDirectory(prefix="ov-depthwise-") as tmp:
        source, built = build(Path(tmp), args.calib_count)
        ratios = time_both_orders(source, built, args.runs, args.rounds)
    rows = {name: {"ratio_vs_ort_fp32": values, "median": float(np.median(values))} for name, values in ratios.items()}
    for name, row in rows.items():
        print(
            f"{row['median']:6.3f}  ({min(row['ratio_vs_ort_fp32']):.3f}-{max(row['ratio_vs_ort_fp32']):.3f})  {name}"
        )
    result = {"model": MODEL.name, "threads": 1, "runs": args.runs, "cpu": describe_cpu(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""INT8/FP16 conversion figures: mAP drop, latency vs ORT FP32, conversion time, size, per format.

    .venv/bin/python -m benchmarks.convert_bench [--targets onnxruntime openvino fp16 coral] [--calib-count 64]

Calibrates on ``--calib-count`` images picked evenly from ../shared/data/coco/coco128_train2017 and
evaluates on the rest (never on calibration images), exactly as `edge convert` does, then checks
the known-bad TFLite specimen with the same gate. Last, every accepted artifact plus OpenVINO's FP32
build (INFERENCE_PRECISION_HINT=f32) is timed at 1 thread in ONE process, runs interleaved, so load
from other processes on a shared machine hits all models alike. ``coral`` (full-integer uint8 TFLite)
also times its last all-integer rung (the model the Edge TPU would run whole) even when the gate
rejects it. Writes benchmarks/results/convert_bench.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
COCO = SHARED / "coco" / "coco128_train2017"
MODEL = SHARED / "models" / "yolox_nano.onnx"
BAD = SHARED / "models" / "yolox_nano_full_int8_known_bad.tflite"


def _convert(target: str, out: Path, calib_count: int) -> dict:
    from edgetally.converters.convert import Int8Request, convert_fp16, convert_int8, summary

    profile = {"onnxruntime": "generic-onnxruntime", "openvino": "intel-x86-openvino",
               "tensorrt": "jetson-orin-nano-jp6", "fp16": None, "openvino-fp16": "intel-x86-openvino",
               "coral": "coral-edgetpu"}[target]
    fp16 = target.endswith("fp16")  # no calibration: evaluated on all images (INT8: on the non-calibration ones)
    request = Int8Request(MODEL, out, "yolox", 416, "coco80", None if fp16 else COCO / "images", COCO / "images",
                          COCO / "labels", 1.0, False, profile, calib_count, 2)
    started = time.perf_counter()
    build = convert_fp16 if fp16 else convert_int8
    artifact, report = build(request, {}, log=lambda m: print(m, file=sys.stderr))
    print(summary(artifact, report))
    latency = report.get("latency", {})
    one = {"fp32": latency.get("fp32", [{}])[0].get("p50_ms"), "artifact": latency.get("candidate", [{}])[0].get("p50_ms")}
    if "runtime_fp32" in latency:
        one["runtime_fp32"] = latency["runtime_fp32"][0]["p50_ms"]
    return {"target": target, "profile": profile, "strategy": report["strategy"]["name"],
            "map50_95_fp32": report["accuracy"]["fp32"]["map50_95"],
            "map50_95_artifact": report["accuracy"]["candidate"]["map50_95"],
            "map50_95_drop_points": report["accuracy"]["map50_95_drop_points"],
            "agreement_f1": report["accuracy"]["agreement_f1_iou50"],
            "precision": report["precision"], "latency_1thread_p50_ms": one,
            "latency_ratio_1thread": latency.get("ratio_1_thread"),
            "size_ratio": report["sizes"]["ratio"], "conversion_seconds": round(time.perf_counter() - started, 1),
            "eval_images": report["evaluation"]["count"], "attempts": [a["strategy"]["name"] for a in report["attempts"]]}


def _all_integer(reference: Path, out: Path, calib_count: int) -> Path:
    """The coral ladder's last all-integer rung (every op INT8, uint8 I/O: what the Edge TPU runs whole),
    built for timing even if the gate rejects it."""
    from edgetally.converters.accuracy.calibration import load_calibration
    from edgetally.converters.targets.tflite_full_int import FULL_INTEGER_REPAIRS, full_integer_builder
    from edgetally.artifact import Artifact

    ref = Artifact.load(reference)
    calibration = load_calibration(COCO / "images", ref.manifest.input, calib_count)
    rung = [s for s in FULL_INTEGER_REPAIRS if not (s.keep_tail_float or s.float_stem_convs or s.float_head_convs)][-1]
    artifact, _info = full_integer_builder(ref, calibration, out / "work", "uint8")(rung, out / "art")
    return artifact.directory


def _latency_all(out_dirs: dict[str, Path], runs: int) -> dict:
    """Every accepted artifact, ORT FP32 and OpenVINO FP32 (f32 hint) at 1 thread, interleaved, one process."""
    from edgetally.converters.derive import derive
    from edgetally.converters.targets.openvino import convert_fp32
    from edgetally.converters.report import measure_interleaved
    from edgetally.artifact import Artifact

    reference = Artifact.load(next(iter(out_dirs.values())) / "reference")
    models = {"onnxruntime FP32": reference}
    ov_dir = next(iter(out_dirs.values())).parent / "openvino-fp32"
    ov_dir.mkdir(exist_ok=True)
    convert_fp32(reference.model_path, ov_dir / "model.fp32.xml")
    models["openvino FP32 (f32 hint)"] = derive(reference, ov_dir, "model.fp32.xml", format="openvino",
                                                runtime="openvino", precision="fp32")
    for target, directory in out_dirs.items():
        artifact = Artifact.load(directory)
        models[f"{target} {artifact.manifest.precision.upper()} ({artifact.manifest.runtime})"] = artifact
    rows = measure_interleaved(list(models.values()), threads=1, runs=runs)
    base = rows[0]["p50_ms"]
    return {"threads": 1, "runs": runs, "note": "infer only, random frame, models interleaved in one process",
            "rows": {name: {**row, "ratio_vs_ort_fp32": round(row["p50_ms"] / base, 3)}
                     for name, row in zip(models, rows)}}


def _known_bad(reference_dir: Path, out: Path) -> dict:
    from edgetally.converters.accuracy.gate import GateConfig
    from edgetally.converters.targets.tflite_wrap import wrap_tflite
    from edgetally.converters.accuracy.verify import verify
    from edgetally.artifact import Artifact

    bad = wrap_tflite(BAD, Artifact.load(reference_dir), out)
    verdict = verify(bad.directory, COCO / "images", COCO / "labels", reference_dir, GateConfig())
    return {"passed": verdict.passed, "reason": verdict.reason,
            "map50_95": verdict.metrics.get("candidate", {}).get("map50_95"),
            "agreement_f1": verdict.metrics.get("agreement_f1_iou50")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["onnxruntime", "openvino", "fp16"],
                        choices=["onnxruntime", "openvino", "tensorrt", "fp16", "openvino-fp16", "coral"])
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--latency-runs", type=int, default=200, help="runs per model in the 1-thread table")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "convert_bench.json")
    args = parser.parse_args(argv)
    if not MODEL.is_file():
        print(f"{MODEL} not found: the benchmark needs ../shared/data", file=sys.stderr)
        return 2
    results: dict = {"model": MODEL.name, "calib_count": args.calib_count, "targets": []}
    with tempfile.TemporaryDirectory(prefix="convert-bench-") as tmp:
        for target in args.targets:
            results["targets"].append(_convert(target, Path(tmp) / target, args.calib_count))
        timed = {t: Path(tmp) / t for t in args.targets}
        if "coral" in args.targets:
            timed["coral all-integer rung"] = _all_integer(Path(tmp) / "coral" / "reference", Path(tmp) / "allint",
                                                           args.calib_count)
        results["latency_1thread"] = _latency_all(timed, args.latency_runs)
        reference = Path(tmp) / args.targets[0] / "reference"
        results["known_bad_tflite"] = _known_bad(reference, Path(tmp) / "bad")
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""INT8 conversion figures: mAP drop, latency vs ORT FP32, conversion time, size, per format.

    .venv/bin/python -m benchmarks.convert_bench [--targets onnxruntime openvino] [--calib-count 64]

Calibrates on ``--calib-count`` images picked evenly from ../shared/data/coco/coco128_train2017 and
evaluates on the rest (never on calibration images), exactly as `edge convert` does, then checks
the known-bad TFLite specimen with the same gate. Writes benchmarks/results/convert_bench.json.
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
    from converters.convert_int8 import Int8Request, convert_int8, summary

    profile = {"onnxruntime": "generic-onnxruntime", "openvino": "intel-x86-openvino",
               "tensorrt": "jetson-orin-nano-jp6"}[target]
    request = Int8Request(MODEL, out, "yolox", 416, "coco80", COCO / "images", COCO / "images", COCO / "labels",
                          1.0, False, profile, calib_count, 2)
    started = time.perf_counter()
    artifact, report = convert_int8(request, {}, log=lambda m: print(m, file=sys.stderr))
    print(summary(artifact, report))
    latency = report.get("latency", {})
    one = {"fp32": latency.get("fp32", [{}])[0].get("p50_ms"), "int8": latency.get("candidate", [{}])[0].get("p50_ms")}
    return {"target": target, "profile": profile, "strategy": report["strategy"]["name"],
            "map50_95_fp32": report["accuracy"]["fp32"]["map50_95"],
            "map50_95_int8": report["accuracy"]["candidate"]["map50_95"],
            "map50_95_drop_points": report["accuracy"]["map50_95_drop_points"],
            "agreement_f1": report["accuracy"]["agreement_f1_iou50"],
            "latency_1thread_p50_ms": one, "latency_ratio_1thread": latency.get("ratio_1_thread"),
            "size_ratio": report["sizes"]["ratio"], "conversion_seconds": round(time.perf_counter() - started, 1),
            "eval_images": report["evaluation"]["count"], "attempts": [a["strategy"]["name"] for a in report["attempts"]]}


def _known_bad(reference_dir: Path, out: Path) -> dict:
    from converters.gate import GateConfig
    from converters.tflite_int8 import wrap_tflite
    from converters.verify import verify
    from edge.artifact import Artifact

    bad = wrap_tflite(BAD, Artifact.load(reference_dir), out)
    verdict = verify(bad.directory, COCO / "images", COCO / "labels", reference_dir, GateConfig())
    return {"passed": verdict.passed, "reason": verdict.reason,
            "map50_95": verdict.metrics.get("candidate", {}).get("map50_95"),
            "agreement_f1": verdict.metrics.get("agreement_f1_iou50")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["onnxruntime", "openvino"])
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "convert_bench.json")
    args = parser.parse_args(argv)
    if not MODEL.is_file():
        print(f"{MODEL} not found: the benchmark needs ../shared/data", file=sys.stderr)
        return 2
    results: dict = {"model": MODEL.name, "calib_count": args.calib_count, "targets": []}
    with tempfile.TemporaryDirectory(prefix="convert-bench-") as tmp:
        for target in args.targets:
            results["targets"].append(_convert(target, Path(tmp) / target, args.calib_count))
        reference = Path(tmp) / args.targets[0] / "reference"
        results["known_bad_tflite"] = _known_bad(reference, Path(tmp) / "bad")
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

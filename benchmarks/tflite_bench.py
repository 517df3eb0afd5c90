"""INT8 TFLite figures on YOLOX-nano: mAP drop vs FP32 ONNX, conversion time, size, latency (1/2 threads).

    .venv/bin/python -m benchmarks.tflite_bench [--calib-count 64] [--max-map-drop 1.0]

Calibrates on ``--calib-count`` images picked evenly from ../shared/data/coco/coco128_train2017,
evaluates on the rest (never on calibration images), runs the gate's TFLite repair ladder
(edgetally.converters.targets.tflite.TFLITE_REPAIRS) and writes benchmarks/results/tflite_bench.json.
Needs the convert-tflite extra (see pyproject.toml).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco" / "coco128_train2017"
MODEL = ROOT.parent / "shared" / "data" / "models" / "yolox_nano.onnx"


def run(calib_count: int, max_map_drop: float, out: Path) -> dict:
    from edgetally.converters.accuracy.calibration import load_calibration
    from edgetally.converters.accuracy.evaluate import load_eval_set
    from edgetally.converters.accuracy.folds import Fold
    from edgetally.converters.accuracy.gate import GateConfig
    from edgetally.converters.build import BuildOptions, build_int8
    from edgetally.converters.package import package_fp32

    started = time.perf_counter()
    reference = package_fp32(MODEL, out / "fp32", "yolox", 416)
    calibration = load_calibration(COCO / "images", reference.manifest.input, calib_count)
    images = load_eval_set(COCO / "images", COCO / "labels", calibration.sha256)
    artifact, report = build_int8(
        reference,
        out / "int8",
        "litert",
        [Fold(calibration, images)],
        GateConfig(max_map_drop=max_map_drop, threads=2),
        BuildOptions(fallback=True),
        log=lambda m: print(m, file=sys.stderr),
    )
    latency = report.get("latency", {})
    return {
        "model": MODEL.name,
        "calib_count": len(calibration),
        "eval_images": len(images),
        "passed": report["passed"],
        "strategy": (report["strategy"] or {}).get("name"),
        "attempts": [
            {"strategy": a["strategy"]["name"], "reason": a["reason"], "seconds": a["seconds"]}
            for a in report["attempts"]
        ],
        "accuracy": {
            k: report["accuracy"].get(k) for k in ("map50_95_drop_points", "map50_drop_points", "agreement_f1_iou50")
        },
        "sizes": report["sizes"],
        "latency": latency,
        "conversion_seconds_total": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--max-map-drop", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tflite_bench.json")
    args = parser.parse_args(argv)
    if not MODEL.is_file():
        print(f"{MODEL} not found: the benchmark needs ../shared/data", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tflite-bench-") as tmp:
        results = run(args.calib_count, args.max_map_drop, Path(tmp))
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

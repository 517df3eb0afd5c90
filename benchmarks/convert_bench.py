"""INT8 conversion figures per device profile, judged on images the converter never calibrated on.

    .venv/bin/python -m benchmarks.convert_bench [--profiles generic-onnxruntime intel-x86-openvino ...]
        [--folds 3] [--calib-count 64] [--activation] [--distill-budget 900] [--threads 1]

Per profile, exactly as `edge convert --profile P` runs: the gate's K folds over coco128 (every image
is evaluated by exactly one fold and never calibrates that fold; the worst fold decides), plus
label-free agreement with FP32 on held-out frames of a DIFFERENT source (the shared traffic video).
Figures: mAP50-95 drop per fold (worst, spread), agreement, latency vs ORT FP32 at 1 and 2 threads
(interleaved in one process), size ratio, conversion time, the strategy and the layers kept float.

``--activation``: the generic-onnxruntime and intel-x86-openvino profiles again with ``--activation
auto`` (SiLU -> ReLU / HardSwish on the largest maps holding ``--activation-share`` of the SiLU
elements, refit + distillation within ``--distill-budget`` seconds). Its
distillation must not see any image a fold evaluates, so those runs calibrate (K folds) on half of
coco128 and are judged on the whole other half in every fold, and distil on the calibration half plus
the bottles video (a camera the holdout never sees). ``--camera-split``: as the option is meant to be
used instead, on frames of the camera that will run the model: the traffic video's first half distils
(every frame), its second half is the holdout (every 4th frame), in every run.
Writes benchmarks/results/convert_bench.json (and prints it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from edgetally.converters.graph.activations import DEFAULT_SHARE

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
COCO = SHARED / "coco" / "coco128_train2017"
MODEL = SHARED / "models" / "yolox_nano.onnx"
HOLDOUT = SHARED / "videos" / "traffic_road.mp4"
DISTILL_VIDEO = SHARED / "videos" / "bottles_table.mp4"
PROFILES = ("generic-onnxruntime", "intel-x86-openvino", "coral-edgetpu", "rpi4", "rpi5")
# The shared YOLOX-nano has a fixed 416x416 input, so every profile is converted at 416 (coral-edgetpu and
# rpi4 ship 320: same network, 0.6x the pixels; the drop and the speed ratio are measured at 416).
INPUT_SIZE = 416


def halves(work: Path) -> tuple[Path, Path]:
    """coco128 split by sorted position (even / odd) into two linked folders with their labels."""
    parts = (work / "coco_even", work / "coco_odd")
    for part in parts:
        for sub in ("images", "labels"):
            (part / sub).mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(sorted((COCO / "images").glob("*.jpg"))):
        part = parts[index % 2]
        (part / "images" / image.name).symlink_to(image)
        label = COCO / "labels" / f"{image.stem}.txt"
        if label.is_file():
            (part / "labels" / label.name).symlink_to(label)
    return parts


def camera_halves(work: Path) -> tuple[Path, Path]:
    """traffic_road.mp4 split in time: every frame of its first half, every 4th of its second (as
    many holdout frames as a video holdout samples), as PNG folders (the decoder's exact pixels)."""
    import cv2

    from benchmarks.frame_rates.detections import iter_frames

    first, last = work / "camera_first_half", work / "camera_last_half"
    first.mkdir(parents=True, exist_ok=True)
    last.mkdir(parents=True, exist_ok=True)
    frames = list(iter_frames(HOLDOUT))
    half = len(frames) // 2
    for index, frame in enumerate(frames):
        if index < half:
            cv2.imwrite(str(first / f"{index:05d}.png"), frame)
        elif (index - half) % 4 == 0:
            cv2.imwrite(str(last / f"{index:05d}.png"), frame)
    return first, last


def convert(
    profile: str,
    out: Path,
    args: argparse.Namespace,
    calib: Path,
    evals: Path,
    activation: bool,
    camera: tuple[Path, Path] | None = None,
) -> dict:
    from edgetally.converters.convert import Int8Request, convert_int8, summary

    request = Int8Request(
        MODEL,
        out,
        "yolox",
        INPUT_SIZE,
        "coco80",
        calib / "images",
        evals / "images",
        evals / "labels",
        1.0,
        False,
        profile,
        args.calib_count,
        args.threads,
        args.latency_runs,
        folds=args.folds,
        holdout=camera[1] if camera else HOLDOUT,
        activation="auto" if activation else None,
        distill_budget_s=args.distill_budget,
        distill_images=(camera[0] if camera else DISTILL_VIDEO) if activation else None,
        activation_share=args.activation_share,
        distill_steps=args.distill_steps,
    )
    started = time.perf_counter()
    try:
        artifact, report = convert_int8(request, {}, log=lambda m: print(m, file=sys.stderr))
    except Exception as exc:  # a failed gate is a result too: keep its report
        report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
        print(f"{profile}: {exc}", file=sys.stderr)
        artifact = None
    else:
        print(summary(artifact, report), file=sys.stderr)
    return row(profile, report, round(time.perf_counter() - started, 1), activation)


def row(profile: str, report: dict, seconds: float, activation: bool) -> dict:
    accuracy = report.get("accuracy", {})
    folds = accuracy.get("folds", {})
    # A refused conversion still times its closest attempt (report["closest"]): the speed and size
    # figures then describe the INT8 model the gate turned down, and say so.
    closest = report.get("closest") or {}
    timed = report if "latency" in report else closest
    latency = timed.get("latency", {})
    ratios = {
        str(c["threads"]): round(c["p50_ms"] / f["p50_ms"], 3)
        for f, c in zip(latency.get("fp32", []), latency.get("candidate", []), strict=True)
    }
    return {
        "profile": profile,
        "activation_replaced": activation,
        "passed": report.get("passed"),
        "strategy": (report.get("strategy") or {}).get("name"),
        "attempts": [
            a["strategy"]["name"] + (f" ({a['source']})" if a.get("source") else "") for a in report.get("attempts", [])
        ],
        "quantised_model": report.get("quantised_model"),
        "map50_95_fp32_fold1": accuracy.get("fp32", {}).get("map50_95"),
        "map50_95_drop_points_per_fold": folds.get("map50_95_drop_points", {}).get("per_fold"),
        "map50_95_drop_points_worst": folds.get("map50_95_drop_points", {}).get("worst"),
        "map50_95_drop_points_spread": folds.get("map50_95_drop_points", {}).get("spread"),
        "map50_95_drop_ci95_per_fold": folds.get("map50_95_drop_points", {}).get("ci95_per_fold"),
        "map50_95_drop_with_mirrors_per_fold": folds.get("map50_95_drop_points_with_mirrors", {}).get("per_fold"),
        "map50_95_drop_largest_class_shares_per_fold": folds.get("map50_95_drop_points", {}).get(
            "largest_class_shares_per_fold"
        ),
        "map50_95_drop_pooled": folds.get("pooled"),
        "attempt_folds": [_attempt_folds(a) for a in report.get("attempts", [])],
        "agreement_f1_worst": folds.get("agreement_f1_iou50", {}).get("worst"),
        "holdout_agreement_f1_worst": folds.get("holdout_agreement_f1", {}).get("worst"),
        "latency_p50_ms": {
            "ort_fp32": [r["p50_ms"] for r in latency.get("fp32", [])],
            "artifact": [r["p50_ms"] for r in latency.get("candidate", [])],
            "runtime_fp32": [r["p50_ms"] for r in latency.get("runtime_fp32", [])],
        },
        "latency_ratio_vs_ort_fp32_by_threads": ratios,
        "timed": None
        if not latency
        else ("artifact" if timed is report else f"closest attempt {closest['strategy']} (refused)"),
        "speed": (timed.get("speed") or {}).get("statement"),
        "size_ratio": timed.get("sizes", {}).get("ratio"),
        "float_layers": report.get("float_layers"),
        "distillation": {
            k: v
            for k, v in (report.get("distillation") or {}).items()
            if k
            in (
                "activation",
                "replaced",
                "silu_total",
                "elements_share",
                "kept_silu_maps",
                "before",
                "after_refit",
                "after",
                "seconds",
                "steps",
                "images",
                "refit_seconds",
                "validation_images",
                "validation_loss",
                "validation_steps",
                "kept_steps",
                "summary",
            )
        }
        or None,
        "conversion_seconds": seconds,
    }


def _attempt_folds(attempt: dict) -> dict:
    """Every rung's fold figures, not only the closest one's: drops, their intervals, the drops with each
    image's mirror too (report only), the pooled drop."""
    folds = attempt.get("metrics", {}).get("folds", {})
    drops = folds.get("map50_95_drop_points", {})
    return {
        "strategy": attempt["strategy"]["name"],
        "per_fold": drops.get("per_fold"),
        "ci95_per_fold": drops.get("ci95_per_fold"),
        "with_mirrors_per_fold": folds.get("map50_95_drop_points_with_mirrors", {}).get("per_fold"),
        "largest_class_shares_per_fold": drops.get("largest_class_shares_per_fold"),
        "pooled": folds.get("pooled"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=PROFILES)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="evaluation and distillation threads")
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--activation", action="store_true", help="also --activation auto for ORT and OpenVINO")
    parser.add_argument("--only-activation", action="store_true", help="only the --activation runs")
    parser.add_argument("--distill-budget", type=float, default=900.0)
    parser.add_argument(
        "--distill-steps", type=int, default=None, help="edge convert --distill-steps (instead of the budget)"
    )
    parser.add_argument(
        "--activation-share",
        type=float,
        default=DEFAULT_SHARE,
        help="edge convert --activation-share (default %(default)s)",
    )
    parser.add_argument(
        "--activation-profiles",
        nargs="+",
        default=["generic-onnxruntime", "intel-x86-openvino"],
        choices=["generic-onnxruntime", "intel-x86-openvino"],
    )
    parser.add_argument(
        "--camera-split",
        action="store_true",
        help="distil on the traffic video's first half, hold out its second half (default: distil on the "
        "bottles video, hold out the whole traffic video)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "convert_bench.json")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the artifacts (and the image halves) under DIR and keep them, e.g. to time them again "
        "with `edge bench --model DIR/PROFILE`",
    )
    args = parser.parse_args(argv)
    if not MODEL.is_file():
        print(f"{MODEL} not found: the benchmark needs ../shared/data", file=sys.stderr)
        return 2
    from edgetally.cpu import describe_cpu

    results: dict = {
        "model": MODEL.name,
        "cpu": describe_cpu(),  # INT8 figures depend on it (VNNI or not: docs/int8.md)
        "folds": args.folds,
        "calib_count": args.calib_count,
        "holdout": f"{HOLDOUT.name}, second half" if args.camera_split else HOLDOUT.name,
        "distill_images": f"{HOLDOUT.name}, first half" if args.camera_split else DISTILL_VIDEO.name,
        "profiles": [],
    }
    with tempfile.TemporaryDirectory(prefix="convert-bench-") as tmp:
        work = Path(tmp) if args.keep is None else args.keep
        work.mkdir(parents=True, exist_ok=True)
        camera = camera_halves(work) if args.camera_split else None
        if not args.only_activation:
            for profile in args.profiles:
                results["profiles"].append(convert(profile, work / profile, args, COCO, COCO, False, camera))
                _save(results, args.out)
        if args.activation or args.only_activation:
            calib, evals = halves(work)
            for profile in args.activation_profiles:
                results["profiles"].append(convert(profile, work / f"{profile}-act", args, calib, evals, True, camera))
                _save(results, args.out)
    print(json.dumps(results, indent=2))
    return 0


def _save(results: dict, out: Path) -> None:
    """After every profile: a long run that is stopped keeps what it measured."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())

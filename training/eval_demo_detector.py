"""Evaluate the demo detector on held-out generated scenes: mAP50 and counts vs ground truth.

    .venv/bin/python -m training.eval_demo_detector --model models/demo/detector.onnx

mAP: the ONNX is packaged as an FP32 artifact and run through the runner's own stack
(edgetally.converters.accuracy.evaluate.detect_all: Preprocessor -> runtime -> yolox decoder); heavily occluded or tiny
ground truth is "crowd" (a detection there is neither a hit nor a false positive).
Counts: ``edge run`` (the real CLI, tracker and line counter) on a held-out scene, compared per
class and direction with the scene's exact crossings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgetally.converters.accuracy.evaluate import EvalImage, detect_all
from edgetally.converters.accuracy.metrics import ImageBoxes, mean_average_precision
from edgetally.converters.package import package_fp32
from edgetally.demo.scene import DEFAULT_LINE, SceneConfig, render_scene
from training.demo_data import MIN_SIDE_PX, MIN_VISIBILITY, read_frames
from training.demo_model import INPUT_HW, LABELS, STRIDES

EVAL_SEEDS = (9001, 9002, 9003)
INPUT_SCALE = INPUT_HW[1] / 640  # 640x360 frames -> the model input


def package(model: Path, out: Path, class_agnostic: bool, nms_iou: float) -> Path:
    options = {"strides": list(STRIDES), "class_agnostic_nms": class_agnostic, "nms_iou": nms_iou}
    package_fp32(model, out, "yolox", INPUT_HW, list(LABELS), decoder_options=options)
    return out


def map50(artifact: Path, seeds: tuple[int, ...], seconds: float, every: int, workdir: Path) -> dict:
    from edgetally.artifact import Artifact

    images: list[EvalImage] = []
    for seed in seeds:
        video = workdir / f"eval{seed}.mp4"
        truth = render_scene(SceneConfig(seconds=seconds, seed=seed), video)
        for fb, frame in list(zip(truth.frames, read_frames(video)))[::every]:
            side = np.minimum(fb.xyxy[:, 2] - fb.xyxy[:, 0], fb.xyxy[:, 3] - fb.xyxy[:, 1]) * INPUT_SCALE
            crowd = (fb.visibility < MIN_VISIBILITY) | (side < MIN_SIDE_PX)
            gt = ImageBoxes(fb.xyxy.astype(np.float64), fb.class_ids, crowd=crowd)
            images.append(EvalImage(Path(f"scene{seed}/{fb.index}"), frame, gt))
    dets = detect_all(Artifact.load(artifact), images)
    result = mean_average_precision([im.truth for im in images], dets)  # type: ignore[misc]
    return {"images": len(images), **result.as_dict(list(LABELS))}


def counts_error(artifact: Path, seed: int, seconds: float, workdir: Path) -> dict:
    video = workdir / f"scene{seed}.mp4"
    truth = render_scene(SceneConfig(seconds=seconds, seed=seed), video)
    expected = truth.counts(DEFAULT_LINE)
    summary = workdir / f"summary{seed}.json"
    line = "L=" + ",".join(f"{v:g}" for v in DEFAULT_LINE)
    cmd = [
        str(Path(sys.executable).parent / "edge"),
        "run",
        "--model",
        str(artifact),
        "--source",
        str(video),
        "--line",
        line,
        "--summary-json",
        str(summary),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    got = json.loads(summary.read_text())["counts"].get("L", {})
    rows = {}
    for name in LABELS:
        for d in ("in", "out"):
            rows[f"{name}/{d}"] = (expected[name][d], got.get(name, {}).get(d, 0))
    total_true = sum(t for t, _ in rows.values())
    total_got = sum(g for _, g in rows.values())
    abs_err = sum(abs(t - g) for t, g in rows.values())
    return {
        "seed": seed,
        "frames": truth.num_frames,
        "per_class_direction": rows,
        "true_total": total_true,
        "counted_total": total_got,
        "sum_abs_error": abs_err,
        "sum_abs_error_pct": round(100.0 * abs_err / max(total_true, 1), 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/demo/detector.onnx"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--count-seeds", default="9001,42", help="scenes for the counting check (30 s each)")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--no-map", action="store_true", help="only the counting check")
    ap.add_argument("--nms-iou", type=float, default=0.45, help="the artifact's NMS IoU (manifest default 0.45)")
    ap.add_argument(
        "--class-agnostic-nms",
        action="store_true",
        help="one box per object: a car box never survives on top of a truck box",
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        art = package(args.model, Path(tmp) / "artifact", args.class_agnostic_nms, args.nms_iou)
        report: dict = {}
        if not args.no_map:
            report["map"] = map50(art, EVAL_SEEDS, args.seconds, args.every, Path(tmp))
            print(json.dumps(report["map"], indent=1), flush=True)
        report["counts"] = [counts_error(art, int(s), 30.0, Path(tmp)) for s in args.count_seeds.split(",")]
    for row in report["counts"]:
        print(json.dumps(row))
    true_total = sum(r["true_total"] for r in report["counts"])
    abs_err = sum(r["sum_abs_error"] for r in report["counts"])
    net = sum(r["counted_total"] for r in report["counts"]) - true_total
    report["counts_overall"] = {
        "true_total": true_total,
        "sum_abs_error": abs_err,
        "net_error": net,
        "sum_abs_error_pct": round(100.0 * abs_err / max(true_total, 1), 2),
    }
    print(json.dumps(report["counts_overall"]))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

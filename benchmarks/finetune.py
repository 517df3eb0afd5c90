"""Benchmark of issue 20's chain on a view the COCO model was never trained for (the demo's top-down road).

    nice -n 10 .venv/bin/python -m benchmarks.finetune --budget 15m --out /tmp/ft-bench

1. Render a top-down scene (the labelled clip) and a second, held-out one (the counting clip), both
   with exact ground truth.
2. `edge label`'s session over the labelled clip: 50 frames sampled for diversity, motion boxes linked
   by the tracker; a simulated person (benchmarks/label_oracle.py) fixes them against the truth with
   the page's actions -> labelling effort (actions per frame with proposals vs drawing every box).
3. Export (train/val split by time), `edge train --from yolox_nano.onnx` within the budget, with the
   counting clip and its line: mAP50 / mAP50-95 on the validation frames and counts before and after.

Prints one JSON document (also written to OUT/benchmark.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.label_oracle import label_session, scene_truth
from edgetally.demo.scene import DEFAULT_LINE, SceneConfig, render_scene
from edgetally.label.export import export_dataset
from edgetally.label.session import start_session

REPO = Path(__file__).resolve().parents[1]
YOLOX = REPO.parent / "shared/data/models/yolox_nano.onnx"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/edgetally-finetune-bench"))
    ap.add_argument("--model", type=Path, default=YOLOX)
    ap.add_argument("--budget", default="15m")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--label-seconds", type=float, default=40.0)
    ap.add_argument("--count-seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--view", default="topdown")
    ap.add_argument("--input-size", default="256x416", help="edge train --input-size (16:9 frames: no padding rows)")
    ap.add_argument("--batch", default="8")
    ap.add_argument("--threads", default="2", help="torch threads (1 is faster on an oversubscribed machine)")
    args = ap.parse_args(argv)
    from edgetally.cli import main as edge

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    label_clip, count_clip = out / "label_clip.mp4", out / "count_clip.mp4"
    truth = render_scene(SceneConfig(seconds=args.label_seconds, seed=args.seed, view=args.view), label_clip)
    count_truth = render_scene(
        SceneConfig(seconds=args.count_seconds, seed=args.seed + 1000, view=args.view), count_clip
    )
    truth_json = count_truth.write_truth_json(out / "count_clip.truth.json", DEFAULT_LINE)
    t0 = time.monotonic()
    session = out / "labels"
    store = start_session(str(label_clip), session, list(truth.labels), args.frames, say=print)
    proposals_s = time.monotonic() - t0
    effort = label_session(store, scene_truth(truth))
    summary = export_dataset(store, out / "dataset")
    print(summary.line())
    line = ",".join(str(v) for v in DEFAULT_LINE)
    t0 = time.monotonic()
    rc = edge(
        [
            "train",
            str(out / "dataset"),
            "--from",
            str(args.model),
            "--out",
            str(out / "tuned"),
            "--time-budget",
            args.budget,
            "--input-size",
            args.input_size,
            "--batch",
            args.batch,
            "--threads",
            args.threads,
            "--clip",
            str(count_clip),
            "--line",
            f"L={line}",
            "--truth",
            str(truth_json),
        ]
    )
    wall = time.monotonic() - t0
    if rc != 0:
        return rc
    report = json.loads((out / "tuned/report.json").read_text())
    result = {
        "view": args.view,
        "labelled_clip_frames": truth.num_frames,
        "proposal_seconds": round(proposals_s, 1),
        "labelling": effort.as_dict(),
        "train_frames": report["train_frames"],
        "val_frames": report["val_frames"],
        "budget_s": report["budget_s"],
        "train_seconds": report["train_seconds"],
        "edge_train_wall_s": round(wall, 1),
        "iterations": report["iterations"],
        "stopped": report["stopped"],
        "map_before": report["map_before"],
        "map_after": report["map_after"],
        "counts_truth": report.get("counts_truth"),
        "count_error_before": report.get("count_error_before"),
        "count_error_after": report.get("count_error_after"),
        "counts_before_total": {
            k: sum(sum(d.values()) for d in v.values()) for k, v in report["counts_before"].items()
        },
        "counts_after_total": {k: sum(sum(d.values()) for d in v.values()) for k, v in report["counts_after"].items()},
    }
    (out / "benchmark.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

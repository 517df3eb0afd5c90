"""Counts of a fine-tuned top-down detector on held-out scenes, by `drop_contained` setting (issue 20).

    .venv/bin/python -m benchmarks.topdown_counts [--model models/topdown/yolox_nano_topdown.onnx]
                                                  [--drop 0,0.9,0.8,0.7] [--out /tmp/topdown-counts]

Renders five top-down demo scenes the model never saw (exact truth; seed 1021 is the 30 s clip
benchmarks.finetune counts on), packages the model as `edge train` judges it (FP32, class-agnostic
NMS) once per setting, counts every scene with the real counting pipeline and prints, per setting,
the counts, the error of the total and the sum of absolute errors per class and direction.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgetally.demo.scene import DEFAULT_LINE, SceneConfig, render_scene
from edgetally.train.judge import count_clip, package

REPO = Path(__file__).resolve().parents[1]
SCENES = ((1021, 30.0), (31, 20.0), (32, 20.0), (33, 12.0), (34, 12.0))  # (seed, seconds)
LINE = [("L", [(DEFAULT_LINE[0], DEFAULT_LINE[1]), (DEFAULT_LINE[2], DEFAULT_LINE[3])])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "models/topdown/yolox_nano_topdown.onnx")
    ap.add_argument("--labels", type=Path, default=REPO / "models/topdown/labels.txt")
    ap.add_argument("--input-size", default="256x416", help="HxW the model was trained at")
    ap.add_argument("--drop", default="0,0.9,0.8,0.7", help="drop_contained settings (0 = off)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/topdown-counts"))
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args(argv)
    h, w = (int(v) for v in args.input_size.split("x"))
    labels = args.labels.read_text().split()
    args.out.mkdir(parents=True, exist_ok=True)
    scenes = []
    for seed, seconds in SCENES:
        video = args.out / f"scene-{seed}.mp4"
        truth = render_scene(SceneConfig(seconds=seconds, seed=seed, view="topdown"), video)
        scenes.append((seed, video, truth.counts(DEFAULT_LINE), list(truth.labels)))
    result = []
    for drop in (float(v) for v in args.drop.split(",")):
        artifact = package(args.model, args.out / f"model-{drop:g}", (h, w), (8, 16, 32), labels, drop)
        row = {"drop_contained": drop, "scenes": [], "counted": 0, "truth": 0, "class_direction_abs": 0}
        for seed, video, truth, names in scenes:
            got = count_clip(artifact, video, LINE, names, threads=2)["L"]
            classes = set(got) | set(truth)
            abs_err = sum(
                abs(got.get(c, {}).get(d, 0) - truth.get(c, {}).get(d, 0)) for c in classes for d in ("in", "out")
            )
            n, t = (sum(sum(v.values()) for v in x.values()) for x in (got, truth))
            row["scenes"].append({"seed": seed, "counted": n, "truth": t, "class_direction_abs": abs_err})
            row["counted"] += n
            row["truth"] += t
            row["class_direction_abs"] += abs_err
        result.append(row)
        per_scene = " / ".join(str(s["counted"]) for s in row["scenes"])
        print(
            f"drop_contained {drop:g}: counted {row['counted']} ({per_scene}) of {row['truth']}, total "
            f"{100 * (row['counted'] - row['truth']) / row['truth']:+.1f} %, per class and direction "
            f"{row['class_direction_abs']} ({100 * row['class_direction_abs'] / row['truth']:.1f} %)",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

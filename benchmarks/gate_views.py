"""How far the accuracy gate's drop moves with the choice of images: judged as they are, and with mirrors.

    .venv/bin/python -m benchmarks.gate_views [--profiles generic-onnxruntime intel-x86-openvino] [--draws 400]

Per profile, one INT8 conversion as `edge convert --profile P --folds 1 --max-map-drop 5` makes it (calibrated
on 64 coco128 images; a 5-point budget keeps the ladder's first rung that is not broken: the figures are about
the measurement, not the recipe), then FP32 and INT8 detections on the 64 other coco128 images, as they are and
mirrored left-right. Figures:

- the mAP50-95 drop over the images as they are, over their mirrors alone, and over both (what the gate uses);
- the spread of the drop over ``--draws`` resamples of the images (drawn with replacement; an image and its
  mirror are drawn together): standard deviation and 95 % interval width, as they are and with mirrors. The
  ratio of the two is how much less a fold's figure moves with its images when the gate judges mirrors too.

Writes benchmarks/results/gate_views.json (and prints it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.convert_bench import COCO, INPUT_SIZE, MODEL

PROFILES = ("generic-onnxruntime", "intel-x86-openvino", "coral-edgetpu")


def convert(profile: str, out: Path, threads: int) -> Path:
    """The ladder's first rung for ``profile`` that loses under 5 points, one fold of 64 + 64."""
    from edgetally.converters.convert import Int8Request, convert_int8

    request = Int8Request(
        MODEL, out, "yolox", INPUT_SIZE, "coco80", COCO / "images", COCO / "images", COCO / "labels", 5.0,
        False, profile, 64, threads, 3, folds=1,
    )  # fmt: skip
    convert_int8(request, {}, log=lambda m: print(m, file=sys.stderr))
    return out


def spread(reference, candidate, groups: np.ndarray, draws: int, seed: int) -> dict:
    """Drop (points) over ``draws`` resamples of the images, views of one image drawn together."""
    n = int(groups.max()) + 1
    rng = np.random.default_rng(seed)
    drops = []
    for _ in range(draws):
        weights = np.bincount(rng.integers(0, n, n), minlength=n)[groups]
        drops.append(100.0 * (reference.evaluate(weights).map50_95 - candidate.evaluate(weights).map50_95))
    lo, hi = np.percentile(drops, [2.5, 97.5])
    return {"sd_points": round(float(np.std(drops)), 3), "ci95_width_points": round(float(hi - lo), 3)}


def measure(artifact_dir: Path, draws: int, threads: int) -> dict:
    from edgetally.artifact import Artifact
    from edgetally.converters.accuracy.evaluate import detect_all, load_eval_set, with_mirrors
    from edgetally.converters.accuracy.metrics import MatchTable

    report = json.loads((artifact_dir / "report.json").read_text())
    images = load_eval_set(COCO / "images", COCO / "labels", report["calibration"]["sha256"])
    views, groups = with_mirrors(images)
    n = len(images)
    gts = [v.truth for v in views]
    fp32 = detect_all(Artifact.load(artifact_dir / "reference"), views, threads=threads)
    int8 = detect_all(Artifact.load(artifact_dir), views, threads=threads)

    def drop(part: slice) -> float:
        ref, cand = MatchTable(gts[part], fp32[part]), MatchTable(gts[part], int8[part])
        return round(100.0 * (ref.evaluate().map50_95 - cand.evaluate().map50_95), 3)

    whole_ref, whole_cand = MatchTable(gts, fp32), MatchTable(gts, int8)
    as_is_ref, as_is_cand = MatchTable(gts[:n], fp32[:n]), MatchTable(gts[:n], int8[:n])
    as_is = spread(as_is_ref, as_is_cand, np.arange(n), draws, seed=0)
    mirrored = spread(whole_ref, whole_cand, groups, draws, seed=0)  # type: ignore[arg-type]
    return {
        "strategy": report["strategy"]["name"],
        "images": n,
        "drop_points": {"as_is": drop(slice(0, n)), "mirrors": drop(slice(n, 2 * n)), "both": drop(slice(0, 2 * n))},
        "resampled_as_is": as_is,
        "resampled_with_mirrors": mirrored,
        "sd_ratio_with_mirrors": round(mirrored["sd_points"] / as_is["sd_points"], 3) if as_is["sd_points"] else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profiles", nargs="+", choices=PROFILES, default=["generic-onnxruntime", "intel-x86-openvino"]
    )
    parser.add_argument("--draws", type=int, default=400, help="resamples of the images per figure")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gate_views.json")
    args = parser.parse_args(argv)
    if not COCO.is_dir() or not MODEL.is_file():
        print(f"needs {COCO} and {MODEL} (../shared/data)", file=sys.stderr)
        return 2
    rows = {}
    with tempfile.TemporaryDirectory(prefix="gate-views-") as tmp:
        for profile in args.profiles:
            print(
                f"[{profile}] converting (first rung, one fold of 64 calibration + 64 judged images)", file=sys.stderr
            )
            artifact = convert(profile, Path(tmp) / profile, args.threads)
            rows[profile] = measure(artifact, args.draws, args.threads)
            print(json.dumps({profile: rows[profile]}), file=sys.stderr)
    result = {"command": "python -m benchmarks.gate_views " + " ".join(argv or sys.argv[1:]), "profiles": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Before/after figures for the report, measured the way the board will run the model.

Each ONNX file is packaged as an FP32 artifact and run through the runner's own stack: mAP on the
validation frames with edgetally.converters.accuracy (detect_all + the COCO metric), and counts on a
clip with the real counting pipeline (run_counting). The base model's classes are matched to the
dataset's by name (a COCO model's "car" is the dataset's "car"); a dataset class the base model does
not know scores zero before fine-tuning, which is the honest figure.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.converters.accuracy.evaluate import EvalImage, detect_all
from edgetally.converters.accuracy.metrics import ImageBoxes, mean_average_precision
from edgetally.converters.package import package_fp32
from edgetally.train.dataset import Item

# drop_contained settings tried on the validation frames (0 = off; ties go to the earlier).
DROP_CONTAINED_CHOICES = (0.0, 0.9, 0.8, 0.7)


def package(
    onnx: Path,
    out: Path,
    input_hw: tuple[int, int],
    strides: Sequence[int],
    labels: Sequence[str],
    drop_contained: float = 0.0,
) -> Path:
    """FP32 artifact with class-agnostic NMS: one vehicle is one class, and two boxes of different classes
    on it (a "bus" and a "truck") would become two tracks and a double count."""
    options = {"strides": tuple(strides), "class_agnostic_nms": True, "drop_contained": drop_contained}
    return package_fp32(onnx, out, "yolox", input_hw, list(labels), decoder_options=options).directory


def _remap(dets: ImageBoxes, model_labels: Sequence[str], classes: Sequence[str]) -> ImageBoxes:
    lookup = np.array([classes.index(n) if n in classes else -1 for n in model_labels], np.int64)
    ids = lookup[dets.class_ids] if len(dets.class_ids) else dets.class_ids
    keep = ids >= 0
    return ImageBoxes(dets.xyxy[keep], ids[keep], None if dets.scores is None else dets.scores[keep])


def validation_map(artifact: Path, items: Sequence[Item], classes: Sequence[str], threads: int = 2) -> dict[str, float]:
    """mAP50 / mAP50-95 of an artifact on the validation items, its classes matched to ``classes`` by name."""
    from edgetally.artifact import Artifact

    art = Artifact.load(artifact)
    images = [EvalImage(i.path, i.image, ImageBoxes(i.boxes.astype(np.float64), i.class_ids)) for i in items]
    dets = [_remap(d, art.manifest.labels, classes) for d in detect_all(art, images, threads=threads)]
    result = mean_average_precision([im.truth for im in images], dets)  # type: ignore[misc]
    return {"map50": round(result.map50, 4), "map50_95": round(result.map50_95, 4)}


def count_clip(
    artifact: Path,
    clip: Path,
    lines: Sequence[tuple[str, list[tuple[float, float]]]],
    classes: Sequence[str],
    threads: int = 2,
) -> dict[str, Any]:
    """Counts per line, class and direction with the real counting pipeline (only ``classes`` counted)."""
    from edgetally.artifact import Artifact
    from edgetally.config.models import RunSettings
    from edgetally.runner import run_counting

    known = [c for c in classes if c in Artifact.load(artifact).manifest.labels]
    if not known:  # the base model knows none of the classes: it counts nothing
        return {name: {} for name, _ in lines}
    settings = RunSettings.model_validate(
        {
            "model": artifact,
            "source": str(clip),
            "threads": threads,
            "classes": known,
            "lines": [{"name": name, "points": pts} for name, pts in lines],
        }
    )
    return run_counting(settings)["counts"]


def totals(counts: dict[str, Any]) -> dict[str, int]:
    """{line: in + out over every class}."""
    return {line: int(sum(sum(d.values()) for d in per_class.values())) for line, per_class in counts.items()}


def read_truth(path: Path) -> dict[str, int]:
    """Total crossings per line from a truth file: {"counts": {cls: {in, out}}} (demo truth) or
    {"counts": {"in": {cls: n}, "out": {...}}} (hand counts, ../shared format); one line named by the file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    counts = data.get("counts", data)
    total = sum(
        int(v) for inner in counts.values() if isinstance(inner, dict) for k, v in inner.items() if k != "total"
    )
    name = data.get("line", {}).get("name", "L") if isinstance(data.get("line"), dict) else "L"
    return {name: total}


def before_after(
    base_onnx: Path,
    tuned_onnx: Path,
    base_labels: Sequence[str],
    tuned_labels: Sequence[str],
    base_hw: tuple[int, int],
    input_hw: tuple[int, int],
    strides: Sequence[int],
    val: Sequence[Item],
    classes: Sequence[str],
    clip: Path | None,
    lines: Sequence[tuple[str, list[tuple[float, float]]]],
    threads: int = 2,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="edge-train-judge-") as tmp:
        before = package(base_onnx, Path(tmp) / "before", base_hw, strides, base_labels)
        tried = {}
        for fraction in DROP_CONTAINED_CHOICES:
            artifact = package(tuned_onnx, Path(tmp) / f"after-{fraction}", input_hw, strides, tuned_labels, fraction)
            tried[fraction] = (artifact, validation_map(artifact, val, classes, threads))
        # Python's max keeps the first of equal keys: off unless dropping contained boxes scores better.
        chosen = max(tried, key=lambda f: (tried[f][1]["map50"], tried[f][1]["map50_95"]))
        after = tried[chosen][0]
        report: dict[str, Any] = {
            "map_before": validation_map(before, val, classes, threads),
            "map_after": tried[chosen][1],
            "drop_contained": chosen,
            "drop_contained_tried": {str(f): m for f, (_, m) in tried.items()},
        }
        if clip is not None and lines:
            report["counts_before"] = count_clip(before, clip, lines, classes, threads)
            report["counts_after"] = count_clip(after, clip, lines, classes, threads)
    return report

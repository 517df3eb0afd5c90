"""The demo's top-down view: exact truth like the side view, and a view the COCO detector cannot read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetally.demo.scene import DEFAULT_LINE, TOPDOWN, SceneConfig, iter_scene, render_scene


def test_view_is_checked_and_topdown_has_its_own_lanes() -> None:
    with pytest.raises(ValueError, match="view"):
        SceneConfig(view="drone")
    assert SceneConfig(view="topdown").lanes is TOPDOWN and SceneConfig().lanes is not TOPDOWN


def test_vehicles_ride_on_their_lane_centres_and_cross_both_ways() -> None:
    cfg = SceneConfig(seconds=12, seed=4, view="topdown")
    centres = np.array([lane.ground_y * cfg.height for lane in cfg.lanes])
    for _, fb, _ in iter_scene(SceneConfig(seconds=2, seed=4, view="topdown")):
        cy = (fb.xyxy[:, 1] + fb.xyxy[:, 3]) / 2
        assert np.all(np.abs(cy[:, None] - centres[None]).min(axis=1) <= 4.0)
    truth = render_scene(cfg, None)
    totals = {d: sum(c[d] for c in truth.counts(DEFAULT_LINE).values()) for d in ("in", "out")}
    assert totals["in"] > 0 and totals["out"] > 0
    assert render_scene(cfg, None).counts(DEFAULT_LINE) == truth.counts(DEFAULT_LINE)  # deterministic


def test_the_coco_detector_cannot_read_the_topdown_view(yolox_fp32_artifact: Path, tmp_path: Path) -> None:
    """The reason issue 20 exists: measured here, not assumed (the benchmark's 'before' figure)."""
    from edgetally.artifact import Artifact
    from edgetally.converters.accuracy.evaluate import EvalImage, detect_all
    from edgetally.converters.accuracy.metrics import ImageBoxes, mean_average_precision

    video = tmp_path / "t.mp4"
    render_scene(SceneConfig(seconds=3, seed=8, view="topdown"), video)
    images, truth = [], []
    for k, (img, fb, _) in enumerate(iter_scene(SceneConfig(seconds=3, seed=8, view="topdown"))):
        if k % 5 == 0:
            cars = (fb.class_ids == 0) & (fb.visibility > 0.5)
            images.append(EvalImage(Path(f"{k}.png"), img.copy(), None))
            truth.append(ImageBoxes(fb.xyxy[cars].astype(np.float64), np.full(int(cars.sum()), 2)))  # COCO car = 2
    dets = detect_all(Artifact.load(yolox_fp32_artifact), images, threads=1)
    result = mean_average_precision(truth, dets)
    assert sum(len(t.xyxy) for t in truth) > 20
    assert result.per_class[2][1] < 0.3, f"COCO YOLOX-nano reads top-down cars with AP50 {result.per_class[2][1]:.2f}"


def test_the_finetuned_model_counts_where_coco_counts_nothing(yolox_fp32_artifact: Path, tmp_path: Path) -> None:
    """models/topdown: YOLOX-nano after `python -m benchmarks.finetune` (50 labelled frames of another top-down
    scene, 15 min of CPU); on a held-out scene it counts, the COCO model does not."""
    from edgetally.train.judge import count_clip, package, totals

    repo = Path(__file__).resolve().parents[1]
    video = tmp_path / "held_out.mp4"
    truth = render_scene(SceneConfig(seconds=12, seed=777, view="topdown"), video)
    expected = sum(sum(d.values()) for d in truth.counts(DEFAULT_LINE).values())
    names = list(truth.labels)
    line = [("L", [(320.0, 0.0), (320.0, 360.0)])]
    after = {}
    for drop in (0.0, 0.8):  # 0.8: boxes inside better boxes dropped (--drop-contained)
        tuned = package(
            repo / "models/topdown/yolox_nano_topdown.onnx",
            tmp_path / f"tuned-{drop}",
            (256, 416),
            (8, 16, 32),
            (repo / "models/topdown/labels.txt").read_text().split(),
            drop,
        )
        after[drop] = totals(count_clip(tuned, video, line, names, threads=1))["L"]
    before = totals(count_clip(yolox_fp32_artifact, video, line, names, threads=1))["L"]
    assert expected >= 8
    assert before <= 0.2 * expected, f"COCO model counted {before} of {expected}"
    assert abs(after[0.0] - expected) <= 0.25 * expected, f"fine-tuned model counted {after[0.0]} of {expected}"
    # a vehicle's parts boxed inside it were counted as more vehicles (docs/finetune.md)
    assert abs(after[0.8] - expected) <= 1 and after[0.8] <= after[0.0], (after, expected)

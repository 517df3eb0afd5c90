"""COCO-style mAP and label-free agreement (edgetally.converters.accuracy.metrics): hand-computed tables, and a
cross-check against pycocotools on random data when it is installed; the drop's bootstrap interval, and the
mirrored views the gate judges (edgetally.converters.accuracy.evaluate)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from edgetally.converters.accuracy.evaluate import EvalImage, mirrored, with_mirrors
from edgetally.converters.accuracy.metrics import (
    ImageBoxes,
    MatchTable,
    agreement_f1,
    box_iou,
    drop_interval,
    mean_average_precision,
)


def boxes(rows, scores=None, crowd=None) -> ImageBoxes:
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return ImageBoxes(
        arr[:, 1:],
        arr[:, 0].astype(np.int64),
        None if scores is None else np.asarray(scores, dtype=np.float64),
        None if crowd is None else np.asarray(crowd, dtype=bool),
    )


GT = [boxes([[0, 0, 0, 10, 10], [1, 20, 20, 40, 40]]), boxes([[0, 50, 50, 90, 90]])]


@pytest.mark.parametrize(
    ("dets", "expected_5095", "expected_50"),
    [
        # every box found exactly -> 1.0
        ([boxes([[0, 0, 0, 10, 10], [1, 20, 20, 40, 40]], [0.9, 0.8]), boxes([[0, 50, 50, 90, 90]], [0.7])], 1.0, 1.0),
        # nothing detected -> 0.0
        ([boxes([], []), boxes([], [])], 0.0, 0.0),
        # class 0 entirely missed, class 1 exact -> mean over classes 0.5
        ([boxes([[1, 20, 20, 40, 40]], [0.9]), boxes([], [])], 0.5, 0.5),
        # a wrong-class box scores above the right ones: a FP of class 1 only hurts class 1 (ranked first)
        # class 0 AP 1; class 1: FP then TP -> precision 0.5 at recall 1 -> AP 0.5
        (
            [
                boxes([[1, 60, 0, 70, 10], [0, 0, 0, 10, 10], [1, 20, 20, 40, 40]], [0.99, 0.9, 0.8]),
                boxes([[0, 50, 50, 90, 90]], [0.7]),
            ],
            0.75,
            0.75,
        ),
    ],
)
def test_map_tables(dets, expected_5095: float, expected_50: float) -> None:
    result = mean_average_precision(GT, dets)
    assert result.map50_95 == pytest.approx(expected_5095, abs=1e-9)
    assert result.map50 == pytest.approx(expected_50, abs=1e-9)


def test_objects_per_class_leave_crowds_and_absent_classes_out() -> None:
    gts = [boxes([[0, 0, 0, 10, 10], [2, 20, 20, 40, 40]], crowd=[False, True]), boxes([[0, 5, 5, 9, 9]])]
    table = MatchTable(gts, [boxes([], []), boxes([[1, 0, 0, 4, 4]], [0.5])])
    assert table.objects() == {0: 2}  # class 2 only has a crowd region; class 1 only a detection


def test_iou_between_thresholds_counts_only_at_low_thresholds() -> None:
    # IoU of [0,0,10,10] with [0,0,10,7.5] is 0.75: a TP at IoU .50-.75 (6 of 10 thresholds), FP above
    result = mean_average_precision([boxes([[0, 0, 0, 10, 10]])], [boxes([[0, 0, 0, 10, 7.5]], [0.9])])
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(0.6)


def test_crowd_regions_are_ignored_not_false_positives() -> None:
    gt = [boxes([[0, 0, 0, 10, 10], [0, 100, 100, 200, 200]], crowd=[False, True])]
    dets = [boxes([[0, 0, 0, 10, 10], [0, 110, 110, 150, 150]], [0.5, 0.9])]
    assert mean_average_precision(gt, dets).map50_95 == pytest.approx(1.0)


def test_per_class_and_labels() -> None:
    dets = [boxes([[1, 20, 20, 40, 40]], [0.9]), boxes([], [])]
    result = mean_average_precision(GT, dets)
    assert result.per_class == {0: (0.0, 0.0), 1: (1.0, 1.0)}
    assert result.as_dict(["cat", "dog"])["per_class"]["dog"] == {"ap50_95": 1.0, "ap50": 1.0}


def test_box_iou_table() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    assert np.allclose(np.diag(box_iou(a, b)), [1.0, 50 / 150, 0.0])


@pytest.mark.parametrize(
    ("reference", "candidate", "expected"),
    [
        ([boxes([[0, 0, 0, 10, 10]], [0.9])], [boxes([[0, 0, 0, 10, 10]], [0.8])], 1.0),
        ([boxes([[0, 0, 0, 10, 10]], [0.9])], [boxes([[1, 0, 0, 10, 10]], [0.8])], 0.0),  # wrong class
        ([boxes([[0, 0, 0, 10, 10]], [0.9])], [boxes([[0, 0, 0, 10, 4]], [0.8])], 0.0),  # IoU 0.4 < 0.5
        ([boxes([[0, 0, 0, 10, 10], [0, 20, 20, 30, 30]], [0.9, 0.8])], [boxes([[0, 0, 0, 10, 10]], [0.8])], 2 / 3),
        ([boxes([], [])], [boxes([], [])], 1.0),
    ],
)
def test_agreement_f1(reference, candidate, expected: float) -> None:
    assert agreement_f1(reference, candidate) == pytest.approx(expected)


def _random_scene(rng: np.random.Generator, n_images: int = 12):
    gts, dets, coco_gt, coco_dt = [], [], [], []
    for image_id in range(n_images):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 300, (n, 2))
        wh = rng.uniform(5, 120, (n, 2))
        cls = rng.integers(0, 3, n)
        gt_xyxy = np.concatenate([xy, xy + wh], axis=1)
        gts.append(ImageBoxes(gt_xyxy, cls))
        # detections: jittered copies of some GTs, some pure noise, random scores
        keep = rng.random(n) < 0.8
        jitter = gt_xyxy[keep] + rng.normal(0, 6, (int(keep.sum()), 4))
        noise_xy = rng.uniform(0, 300, (3, 2))
        noise = np.concatenate([noise_xy, noise_xy + rng.uniform(5, 80, (3, 2))], axis=1)
        d_xyxy = np.concatenate([jitter, noise])
        d_cls = np.concatenate([cls[keep], rng.integers(0, 3, 3)])
        d_score = rng.random(len(d_xyxy))
        dets.append(ImageBoxes(d_xyxy, d_cls, d_score))
        for b, c in zip(gt_xyxy, cls):
            coco_gt.append(
                {
                    "id": len(coco_gt) + 1,
                    "image_id": image_id,
                    "category_id": int(c) + 1,
                    "iscrowd": 0,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "area": float((b[2] - b[0]) * (b[3] - b[1])),
                }
            )
        for b, c, s in zip(d_xyxy, d_cls, d_score):
            coco_dt.append(
                {
                    "image_id": image_id,
                    "category_id": int(c) + 1,
                    "score": float(s),
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                }
            )
    return gts, dets, coco_gt, coco_dt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pycocotools_on_random_scenes(seed: int) -> None:
    pytest.importorskip("pycocotools", reason="pycocotools is only a cross-check (pip install pycocotools)")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gts, dets, coco_gt, coco_dt = _random_scene(np.random.default_rng(seed))
    present = sorted({a["category_id"] for a in coco_gt})
    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = {
            "images": [{"id": i, "width": 400, "height": 400} for i in range(len(gts))],
            "annotations": coco_gt,
            "categories": [{"id": c} for c in (1, 2, 3)],
        }
        ground.createIndex()
        evaluator = COCOeval(ground, ground.loadRes(coco_dt), "bbox")
        evaluator.params.catIds = present
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ours = mean_average_precision(gts, dets)
    assert ours.map50_95 == pytest.approx(evaluator.stats[0], abs=1e-9)
    assert ours.map50 == pytest.approx(evaluator.stats[1], abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_weighted_resample_scores_as_its_images_copied(seed: int) -> None:
    """The bootstrap counts a drawn image k times by weight; that must equal scoring a list that
    holds k copies of it (and images never drawn left out)."""
    rng = np.random.default_rng(seed)
    gts, dets, _, _ = _random_scene(rng)
    drawn = rng.integers(0, len(gts), len(gts))
    weights = np.bincount(drawn, minlength=len(gts))
    weighted = MatchTable(gts, dets).evaluate(weights)
    copied = mean_average_precision([gts[i] for i in drawn], [dets[i] for i in drawn])
    assert weighted.map50_95 == pytest.approx(copied.map50_95, abs=1e-12)
    assert weighted.map50 == pytest.approx(copied.map50, abs=1e-12)
    assert weighted.per_class.keys() == copied.per_class.keys()


def _without(dets: list[ImageBoxes], images: set[int]) -> list[ImageBoxes]:
    empty = ImageBoxes(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0))
    return [empty if i in images else d for i, d in enumerate(dets)]


def test_drop_interval_of_identical_detections_is_zero() -> None:
    gts, dets, _, _ = _random_scene(np.random.default_rng(5))
    assert drop_interval(MatchTable(gts, dets), MatchTable(gts, dets)) == (0.0, 0.0)


def test_drop_interval_brackets_a_drop_that_depends_on_the_images() -> None:
    """A candidate that finds nothing on 2 of the 12 images: how much that costs depends on how
    often a resample draws those two, so the interval is wide and holds the drop."""
    gts, dets, _, _ = _random_scene(np.random.default_rng(6))
    ref, cand = MatchTable(gts, dets), MatchTable(gts, _without(dets, {0, 1}))
    drop = ref.evaluate().map50_95 - cand.evaluate().map50_95
    lo, hi = drop_interval(ref, cand, resamples=300)
    assert drop > 0.01
    assert lo < drop < hi
    assert hi - lo > drop / 2
    assert drop_interval(ref, cand, resamples=300) == (lo, hi)  # seeded: the same report twice


def test_drop_interval_needs_paired_images() -> None:
    gts, dets, _, _ = _random_scene(np.random.default_rng(7))
    with pytest.raises(ValueError, match="paired"):
        drop_interval(MatchTable(gts, dets), MatchTable(gts[:-1], dets[:-1]))


def test_one_group_per_entry_is_the_plain_interval() -> None:
    gts, dets, _, _ = _random_scene(np.random.default_rng(8))
    ref, cand = MatchTable(gts, dets), MatchTable(gts, _without(dets, {3}))
    assert drop_interval(ref, cand, groups=np.arange(len(gts))) == drop_interval(ref, cand)
    with pytest.raises(ValueError, match="one group per table entry"):
        drop_interval(ref, cand, groups=np.arange(len(gts) - 1))


def test_views_of_one_image_are_drawn_together() -> None:
    """Each image in the table twice (the same boxes twice here): drawn as units, a resample holds both
    views of an image or neither, so the table of 24 views gives the 12 images' own interval."""
    gts, dets, _, _ = _random_scene(np.random.default_rng(9))
    worse = _without(dets, {0, 1})
    twice = MatchTable(gts + gts, dets + dets), MatchTable(gts + gts, worse + worse)
    once = MatchTable(gts, dets), MatchTable(gts, worse)
    n = len(gts)
    assert drop_interval(*twice, groups=np.tile(np.arange(n), 2)) == drop_interval(*once)
    assert drop_interval(*twice) != drop_interval(*once)  # views drawn one by one: a narrower, wrong interval


@pytest.mark.parametrize(
    ("width", "box", "mirrored_box"),
    [
        (100, [10, 5, 30, 25], [70, 5, 90, 25]),
        (100, [0, 0, 100, 50], [0, 0, 100, 50]),  # the whole width stays the whole width
        (64, [40, 10, 64, 20], [0, 10, 24, 20]),  # touching the right edge -> touching the left one
    ],
)
def test_a_mirrored_view_moves_its_labels_with_the_pixels(width: int, box: list[int], mirrored_box: list[int]) -> None:
    image = np.zeros((60, width, 3), np.uint8)
    image[box[1] : box[3], box[0] : box[2]] = 255  # the labelled object is the only bright region
    truth = ImageBoxes(np.array([box], np.float64), np.array([3]), crowd=np.array([True]))
    view = mirrored(EvalImage(Path("a.jpg"), image, truth, "sha"))
    x1, y1, x2, y2 = (int(v) for v in view.truth.xyxy[0])
    assert [x1, y1, x2, y2] == mirrored_box
    assert view.image[y1:y2, x1:x2].min() == 255 and view.image.sum() == image.sum()  # the pixels moved there
    assert view.truth.class_ids.tolist() == [3] and view.truth.crowd.tolist() == [True] and view.sha256 == "sha"
    assert mirrored(view).truth.xyxy.tolist() == [box] and np.array_equal(mirrored(view).image, image)


def test_labelled_sets_get_mirrors_and_unlabelled_ones_do_not() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    labelled = [
        EvalImage(Path(f"{i}.jpg"), image, ImageBoxes(np.zeros((0, 4)), np.zeros(0, np.int64))) for i in range(3)
    ]
    views, groups = with_mirrors(labelled)
    assert len(views) == 6 and groups.tolist() == [0, 1, 2, 0, 1, 2]
    assert [v.path.name for v in views] == ["0.jpg", "1.jpg", "2.jpg"] * 2
    assert views[1] is labelled[1] and views[-1].path.name == "2.jpg" and len(views[2:5]) == 3
    with pytest.raises(IndexError):
        views[6]
    unlabelled = [EvalImage(Path("u.jpg"), image, None)]
    assert with_mirrors(unlabelled) == (unlabelled, None)

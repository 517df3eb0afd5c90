"""K-fold splits for the accuracy gate: no fold ever evaluates on an image (or a video frame's twin) it calibrated on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgetally.artifact import InputSpec
from edgetally.converters.accuracy.calibration import load_calibration
from edgetally.converters.accuracy.evaluate import load_eval_set
from edgetally.converters.accuracy.folds import SplitRequest, plan_folds
from edgetally.converters.accuracy.gate import FoldResult, Paired, Verdict, _combined, class_shares, fold_summary
from edgetally.converters.accuracy.metrics import ImageBoxes, MatchTable, drop_interval
from edgetally.errors import UsageError

SPEC = InputSpec(name="images", shape=[1, 3, 32, 32])


def _folder(root: Path, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for index in range(count):  # distinct content: hashes tell them apart
        cv2.imwrite(str(root / f"{index:03d}.png"), rng.integers(0, 255, (24, 40, 3), dtype=np.uint8))
    return root


def _video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32))
    for index in range(frames):
        frame = np.full((32, 48, 3), index * 255 // frames, np.uint8)
        cv2.putText(frame, str(index), (2, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()
    return path


def _names(items) -> set[str]:
    return {Path(str(i.path)).name for i in items}


def test_shared_folder_folds_partition_the_evaluation_and_never_overlap_calibration(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs", 60)
    folds, info = plan_folds(SplitRequest(folder, calib_count=24, folds=3), SPEC)
    evaluated = [_names(f.images) for f in folds]
    assert [len(e) for e in evaluated] == [20, 20, 20]
    assert set.union(*evaluated) == {f"{i:03d}.png" for i in range(60)} and not evaluated[0] & evaluated[1]
    for fold, names in zip(folds, evaluated, strict=True):
        assert len(fold.calibration) == 24 and not set(fold.calibration.sources) & names
        assert not set(fold.calibration.sha256) & {i.sha256 for i in fold.images}
    assert info["folds"] == 3 and [p["images"] for p in info["per_fold"]] == [20, 20, 20]


def test_one_fold_is_the_split_edge_convert_always_made(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs", 40)
    (fold,), _ = plan_folds(SplitRequest(folder, calib_count=16, folds=1), SPEC)
    calibration = load_calibration(folder, SPEC, 16)
    assert fold.calibration.sources == calibration.sources
    np.testing.assert_array_equal(fold.calibration.tensors, calibration.tensors)
    assert _names(fold.images) == _names(load_eval_set(folder, None, calibration.sha256))


def test_separate_evaluation_folder_is_judged_whole_while_calibration_varies(tmp_path: Path) -> None:
    calib, evals = _folder(tmp_path / "c", 30, seed=1), _folder(tmp_path / "e", 20, seed=2)
    folds, _ = plan_folds(SplitRequest(calib, calib_count=16, folds=3, eval_images=evals), SPEC)
    assert len({f.calibration.sources for f in folds}) == 3
    assert [len(f.images) for f in folds] == [20, 20, 20]


def test_video_holdout_uses_time_segments_and_keeps_their_neighbours_out_of_calibration(tmp_path: Path) -> None:
    video = _video(tmp_path / "cam.avi", 120)
    folds, info = plan_folds(SplitRequest(video, calib_count=24, folds=3), SPEC)
    for index, fold in enumerate(folds):
        frames = sorted(int(str(i.path).rsplit("#", 1)[1]) for i in fold.holdout)
        calibrated = sorted(int(s.rsplit("#", 1)[1]) for s in fold.calibration.sources)
        assert frames and all(f * 3 // 120 == index for f in frames)  # evaluation frames: one segment
        gap = min(abs(c - f) for c in calibrated for f in frames)
        assert gap > 120 / 40, "a calibration frame sits right next to an evaluated one"
        assert not fold.images and len(fold.holdout) >= 16
    assert info["holdout"] and info["metric"] == "agreement F1@IoU0.5 vs FP32"


def test_too_few_images_for_the_folds_is_a_usage_error(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs", 30)
    with pytest.raises(UsageError, match="fold 1/3: only 10 evaluation images .* at least 16"):
        plan_folds(SplitRequest(folder, calib_count=16, folds=3), SPEC)
    with pytest.raises(UsageError, match="--holdout is the calibration source: use --folds 2"):
        plan_folds(
            SplitRequest(_video(tmp_path / "v.avi", 40), calib_count=8, folds=1, holdout=tmp_path / "v.avi"), SPEC
        )


def _fold(name: str, drop: float, passed: bool) -> FoldResult:
    return FoldResult(name, Verdict(passed, f"drop {drop}", {"map50_95_drop_points": drop, "agreement_f1_iou50": 0.9}))


def test_the_drops_with_mirrors_are_summarised_beside_the_deciding_ones() -> None:
    folds = [
        FoldResult(n, Verdict(True, "", {"map50_95_drop_points": d, "map50_95_drop_points_with_mirrors": m}))
        for n, d, m in [("fold 1/2", 0.4, -0.3), ("fold 2/2", 0.6, 1.1)]
    ]
    summary = _combined(folds, 2).metrics["folds"]
    assert summary["map50_95_drop_points"]["worst"] == 0.6  # what decides: the images as they are
    assert summary["map50_95_drop_points_with_mirrors"] == {
        "per_fold": [-0.3, 1.1],
        "worst": 1.1,
        "spread": 1.4,
        "mean": 0.4,
    }
    assert _combined(folds, 2).passed  # a with-mirrors figure over the budget decides nothing


def test_the_worst_fold_decides_and_the_spread_is_reported() -> None:
    verdict = _combined([_fold("fold 1/3", 0.2, True), _fold("fold 2/3", 0.9, True), _fold("fold 3/3", 0.5, True)], 3)
    assert verdict.passed and "worst: fold 2/3 drop 0.90 points (spread 0.70)" in verdict.reason
    summary = verdict.metrics["folds"]["map50_95_drop_points"]
    assert summary == {"per_fold": [0.2, 0.9, 0.5], "worst": 0.9, "spread": 0.7, "mean": 0.5333}
    assert verdict.metrics["map50_95_drop_points"] == 0.2  # the shipped artifact's own fold
    failed = _combined([_fold("fold 1/3", 0.2, True), _fold("fold 2/3", 1.4, False)], 3)
    assert not failed.passed and failed.reason.startswith("fold 2/3: drop 1.4")


def _scene(rng: np.random.Generator, n: int) -> tuple[list[ImageBoxes], list[ImageBoxes], list[ImageBoxes]]:
    """n images of ground truth, FP32-like detections (jittered boxes) and worse ones (more jitter, misses)."""
    gts, fp32, int8 = [], [], []
    for _ in range(n):
        k = int(rng.integers(1, 5))
        xy = rng.uniform(0, 200, (k, 2))
        box = np.concatenate([xy, xy + rng.uniform(20, 80, (k, 2))], axis=1)
        cls = rng.integers(0, 2, k)
        gts.append(ImageBoxes(box, cls))
        fp32.append(ImageBoxes(box + rng.normal(0, 2, box.shape), cls, rng.uniform(0.3, 1, k)))
        keep = rng.random(k) < 0.8
        int8.append(
            ImageBoxes(
                box[keep] + rng.normal(0, 5, (int(keep.sum()), 4)), cls[keep], rng.uniform(0.3, 1, int(keep.sum()))
            )
        )
    return gts, fp32, int8


def _labelled_fold(name: str, gts, fp32, int8, images: tuple[str, ...], groups: np.ndarray | None = None) -> FoldResult:
    """A fold's verdict on ``images``; ``groups``: which image each table entry is a view of (None: one each)."""
    ref, cand = MatchTable(gts, fp32), MatchTable(gts, int8)
    drop = round(100 * (ref.evaluate().map50_95 - cand.evaluate().map50_95), 3)
    groups = np.arange(len(images)) if groups is None else groups
    return FoldResult(name, Verdict(True, "", {"map50_95_drop_points": drop}, Paired(ref, cand, images, groups)))


def test_folds_of_disjoint_images_are_pooled_into_one_drop_and_interval() -> None:
    gts, fp32, int8 = _scene(np.random.default_rng(3), 30)
    folds = [
        _labelled_fold(f"fold {i + 1}/3", gts[a:b], fp32[a:b], int8[a:b], tuple(f"img{j}" for j in range(a, b)))
        for i, (a, b) in enumerate([(0, 10), (10, 20), (20, 30)])
    ]
    pooled = fold_summary(folds)["pooled"]
    whole_ref, whole_cand = MatchTable(gts, fp32), MatchTable(gts, int8)
    drop = 100 * (whole_ref.evaluate().map50_95 - whole_cand.evaluate().map50_95)
    lo, hi = drop_interval(whole_ref, whole_cand)
    assert pooled == {
        "folds": 3,
        "images": 30,
        "map50_95_drop_points": round(drop, 3),
        "ci95_points": [round(100 * lo, 3), round(100 * hi, 3)],
    }
    assert drop > 0  # the worse detections lose accuracy, so the figure is not a trivial zero


def test_pooled_with_mirrors_draws_an_image_with_its_mirror() -> None:
    # Two folds of 6 images; each verdict also pairs 12 views (the 6 images, then a second view of each):
    # the pooled figure with mirrors must draw images, not views, i.e. equal one table grouped the same way.
    gts, fp32, int8 = _scene(np.random.default_rng(5), 24)
    view_groups = np.tile(np.arange(6), 2)
    folds = []
    for i, (a, b) in enumerate([(0, 12), (12, 24)]):
        names = tuple(f"img{i}-{j}" for j in range(6))
        images = _labelled_fold("as is", gts[a : a + 6], fp32[a : a + 6], int8[a : a + 6], names).verdict
        views = _labelled_fold("views", gts[a:b], fp32[a:b], int8[a:b], names, view_groups).verdict
        folds.append(FoldResult(f"fold {i + 1}/2", Verdict(True, "", images.metrics, images.paired, views.paired)))
    pooled = fold_summary(folds)["pooled"]
    assert pooled["images"] == 12
    as_is = [*gts[0:6], *gts[12:18]], [*fp32[0:6], *fp32[12:18]], [*int8[0:6], *int8[12:18]]
    lo, hi = drop_interval(MatchTable(as_is[0], as_is[1]), MatchTable(as_is[0], as_is[2]))
    assert pooled["ci95_points"] == [round(100 * lo, 3), round(100 * hi, 3)]  # the images as they are: as before
    whole_ref, whole_cand = MatchTable(gts, fp32), MatchTable(gts, int8)
    grouped = drop_interval(whole_ref, whole_cand, groups=np.concatenate([view_groups, view_groups + 6]))
    drop = 100 * (whole_ref.evaluate().map50_95 - whole_cand.evaluate().map50_95)
    assert pooled["with_mirrors"] == {
        "map50_95_drop_points": round(drop, 3),
        "ci95_points": [round(100 * grouped[0], 3), round(100 * grouped[1], 3)],
    }
    assert grouped != drop_interval(whole_ref, whole_cand)  # drawing views one by one is another figure


def test_folds_judging_the_same_images_are_not_pooled() -> None:
    gts, fp32, int8 = _scene(np.random.default_rng(4), 10)
    names = tuple(f"img{j}" for j in range(10))
    same = [_labelled_fold(f"fold {i + 1}/2", gts, fp32, int8, names) for i in range(2)]
    assert "pooled" not in fold_summary(same)  # a separate evaluation source judged whole by each fold
    assert "pooled" not in fold_summary(same[:1])  # one fold: nothing to pool
    assert "pooled" not in fold_summary([_fold("fold 1/2", 0.2, True), _fold("fold 2/2", 0.4, True)])  # no matches kept


# Ground truth: class 0 ("a") has 2 objects, class 1 ("b") one. FP32 finds every box exactly (AP 1 each).
_GT = [
    ImageBoxes(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float), np.array([0, 1])),
    ImageBoxes(np.array([[50, 50, 90, 90]], float), np.array([0])),
]
_EXACT = [ImageBoxes(g.xyxy, g.class_ids, np.full(len(g.class_ids), 0.9)) for g in _GT]


def _only(keep: list[list[bool]]) -> list[ImageBoxes]:
    return [ImageBoxes(d.xyxy[k], d.class_ids[k], d.scores[k]) for d, k in zip(_EXACT, map(np.array, keep))]


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (_EXACT, []),  # nothing lost: no share
        (_only([[True, False], [True]]), [{"class": "b", "objects": 1, "points": 50.0}]),  # b's one object missed
        (_only([[False, True], [False]]), [{"class": "a", "objects": 2, "points": 50.0}]),  # both of a's missed
        # one of a's two missed and b missed: a keeps AP 51/101 (COCO's 101 recall points, precision 1
        # up to recall 0.5), so it loses (1 - 51/101) / 2 of the 2-class mean; b half of it
        (
            _only([[True, False], [False]]),
            [{"class": "b", "objects": 1, "points": 50.0}, {"class": "a", "objects": 2, "points": 24.752}],
        ),
    ],
)
def test_class_shares_say_which_classes_and_how_many_objects_lost_the_drop(candidate, expected) -> None:
    ref, cand = MatchTable(_GT, _EXACT), MatchTable(_GT, candidate)
    shares = class_shares(ref.evaluate(), cand.evaluate(), ref.objects(), ["a", "b"])
    assert shares == expected
    drop = 100 * (ref.evaluate().map50_95 - cand.evaluate().map50_95)
    assert sum(s["points"] for s in shares) == pytest.approx(
        drop, abs=2e-3
    )  # no class gained here: the shares are the drop


def test_a_class_that_gains_is_no_share_and_the_list_is_cut_at_top() -> None:
    # FP32 misses b; the candidate finds b (a gain) and misses a's objects
    fp32 = _only([[True, False], [True]])
    ref, cand = MatchTable(_GT, fp32), MatchTable(_GT, _only([[False, True], [False]]))
    shares = class_shares(ref.evaluate(), cand.evaluate(), ref.objects(), ["a", "b"])
    assert shares == [{"class": "a", "objects": 2, "points": 50.0}]
    assert class_shares(ref.evaluate(), cand.evaluate(), ref.objects(), ["a", "b"], top=0) == []


def test_the_convert_summary_names_the_worst_folds_largest_class_shares() -> None:
    from edgetally.converters.convert import _accuracy_lines

    cake = [{"class": "cake", "objects": 1, "points": 0.833}, {"class": "skis", "objects": 3, "points": 0.4}]
    folds = [
        FoldResult(n, Verdict(p, "", {"map50_95_drop_points": d, "map50_95_drop_largest_class_shares": s}))
        for n, d, p, s in [("fold 1/2", 0.2, True, []), ("fold 2/2", 1.5, False, cake)]
    ]
    metrics = _combined(folds, 2).metrics
    assert metrics["folds"]["map50_95_drop_points"]["largest_class_shares_per_fold"] == [[], cake]
    lines = _accuracy_lines({"accuracy": {"folds": metrics["folds"]}})
    assert (
        "    the worst fold's largest class shares, points of its drop: cake 0.83 (1 object), skis 0.40 (3 objects)"
        in lines
    )

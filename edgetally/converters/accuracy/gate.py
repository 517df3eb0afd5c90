"""The accuracy gate: an INT8 artifact is accepted only if it is still as accurate as FP32.

With labels: the mAP50-95 drop (points, paired on the same images) must be <= the budget.
Without labels: detections at the deployment threshold must agree with FP32 (F1 at IoU 0.5), on
the evaluation images and on held-out frames from the deployment camera (``Fold.holdout``).
``run_gate`` tries strategies in order and keeps the first artifact that passes on EVERY fold
(edgetally.converters.accuracy.folds): the worst fold decides, and report.json gets the spread.
Labelled images are also judged mirrored left-right (``GateConfig.mirror_views``), report only: the
drop over each image and its mirror moves a third to a half less with the choice of images, but a
distilled student only ever saw unmirrored images and can lose more on mirrors than on any new photo,
so the images as they are decide. Each labelled fold also reports a paired bootstrap interval of its
drop over its images (``map50_95_drop_ci95_points``): how far the drop moves with the choice of
images; folds that judged disjoint images are also pooled into one drop (``pooled_drop``); and each
names the classes that lost most of its drop, with their objects (``class_shares``: on a few dozen
images one object can carry most of it). These inform a reader; none ever changes a verdict.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetally.artifact import Artifact
from edgetally.converters.accuracy.evaluate import EvalImage, agreement, detect_all, match_table, with_mirrors
from edgetally.converters.accuracy.folds import Fold
from edgetally.converters.accuracy.metrics import ImageBoxes, MapResult, MatchTable, drop_interval
from edgetally.converters.accuracy.strategy import Strategy

DEFAULT_MAX_MAP_DROP = 1.0  # mAP50-95 points
# Label-free floor: measured FP32-vs-INT8 F1 for good YOLOX-nano INT8 builds was 0.90-0.94,
# the known-bad TFLite (boxes collapsed) about 0.0; near-threshold flips cost the rest.
DEFAULT_MIN_AGREEMENT = 0.85
# The drop's bootstrap interval (report only: the gate decides on the drop itself). Below this many
# images an interval from resampling them says little.
MIN_BOOTSTRAP_IMAGES = 8


@dataclass(frozen=True)
class GateConfig:
    max_map_drop: float = DEFAULT_MAX_MAP_DROP
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    threads: int = 2
    mirror_views: bool = True  # labelled images also judged with their mirrors, report only (module docstring)


@dataclass(frozen=True)
class Paired:
    """A labelled verdict's matches, kept to pool folds: FP32's and the candidate's, and which
    images (content hashes) they were judged on."""

    reference: MatchTable
    candidate: MatchTable
    images: tuple[str, ...]  # one per image, not per view
    groups: np.ndarray = field(compare=False)  # table entry -> index into ``images`` (its views share one)

    @classmethod
    def of(
        cls, reference: MatchTable, candidate: MatchTable, images: Sequence[EvalImage], groups: np.ndarray
    ) -> Paired:
        return cls(reference, candidate, tuple(item.sha256 or str(item.path) for item in images), groups)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    metrics: dict = field(default_factory=dict)
    paired: Paired | None = field(default=None, repr=False, compare=False)
    mirrored: Paired | None = field(default=None, repr=False, compare=False)  # the same, each image with its mirror


@dataclass(frozen=True)
class Reference:
    """FP32 detections and scores on the evaluation images, computed once per gate run."""

    artifact: Artifact
    detections: list[ImageBoxes]  # on the images as they are
    matches: MatchTable | None  # the detections matched to the labels; None without labels
    with_mirrors: MatchTable | None = None  # the images then their mirrors, matched (labelled, ``mirror_views``)


def judged_views(images: Sequence[EvalImage], config: GateConfig) -> tuple[Sequence[EvalImage], np.ndarray]:
    """What a verdict scores: the images, and their mirrors when labelled and ``config.mirror_views``;
    -> (views, the image each view is of)."""
    views, groups = with_mirrors(images) if config.mirror_views else (list(images), None)
    return views, np.arange(len(images)) if groups is None else groups


def evaluate_reference(reference: Artifact, images: Sequence[EvalImage], config: GateConfig) -> Reference:
    views, _ = judged_views(images, config)
    detections = detect_all(reference, views, threads=config.threads)
    mirrored = match_table(views, detections) if len(views) > len(images) else None
    return Reference(reference, detections[: len(images)], match_table(images, detections[: len(images)]), mirrored)


def _class_losses(reference: MapResult, candidate: MapResult) -> dict[int, float]:
    """mAP50-95 points (AP x 100) each class with ground truth lost (positive = worse), by class id."""
    return {
        cls: 100.0 * (ap - candidate.per_class.get(cls, (0.0, 0.0))[0]) for cls, (ap, _) in reference.per_class.items()
    }


def _class_name(cls: int, labels: Sequence[str]) -> str:
    return labels[cls] if cls < len(labels) else str(cls)


def per_class_delta(reference: MapResult, candidate: MapResult, labels: Sequence[str]) -> dict[str, float]:
    """mAP50-95 points lost per class (positive = worse), worst first."""
    deltas = {_class_name(cls, labels): round(loss, 3) for cls, loss in _class_losses(reference, candidate).items()}
    return dict(sorted(deltas.items(), key=lambda kv: -kv[1]))


def class_shares(
    reference: MapResult, candidate: MapResult, objects: dict[int, int], labels: Sequence[str], top: int = 3
) -> list[dict]:
    """The classes that lost the most of the mAP50-95 drop: each class's AP loss over the number of
    classes mAP averages (its points of the drop; they sum to the drop), with its ground-truth objects.
    On a few dozen images most classes have one or two objects, and one box of one of them can move
    the drop by half a point: this says whether a fold's drop is the whole set's or a couple of objects'."""
    losses = _class_losses(reference, candidate)
    shares = [
        {"class": _class_name(cls, labels), "objects": objects.get(cls, 0), "points": round(loss / len(losses), 3)}
        for cls, loss in losses.items()
    ]
    shares.sort(key=lambda share: -share["points"])
    return [share for share in shares[:top] if share["points"] > 0]


def share_words(shares: Sequence[dict]) -> str:
    """``class_shares`` in words: "cake 0.83 (1 object), skis 0.40 (3 objects)"."""
    return ", ".join(
        f"{s['class']} {s['points']:.2f} ({s['objects']} object{'' if s['objects'] == 1 else 's'})" for s in shares
    )


def judge(reference: Reference, candidate: Artifact, images: Sequence[EvalImage], config: GateConfig) -> Verdict:
    """Compare ``candidate`` with the FP32 reference on the same images (and report their mirrors: ``judged_views``)."""
    views, groups = judged_views(images, config)
    if (len(views) > len(images)) != (reference.with_mirrors is not None):
        raise ValueError("the reference and the candidate must be judged on the same views")
    scored = detect_all(candidate, views, threads=config.threads)
    detections = scored[: len(images)]
    threshold = reference.artifact.manifest.decoder.score_threshold
    f1 = agreement(reference.detections, detections, threshold)
    metrics: dict = {"agreement_f1_iou50": round(f1, 4), "agreement_score_threshold": threshold, "images": len(images)}
    table = match_table(images, detections)
    if table is None or reference.matches is None:
        passed = f1 >= config.min_agreement
        reason = f"agreement F1 {f1:.3f} {'>=' if passed else '<'} {config.min_agreement} (no labels: label-free check)"
        return Verdict(passed, reason, metrics)
    labels = reference.artifact.manifest.labels
    fp32, accuracy = reference.matches.evaluate(), table.evaluate()
    drop = 100.0 * (fp32.map50_95 - accuracy.map50_95)
    metrics.update(
        {
            "fp32": fp32.as_dict(labels),
            "candidate": accuracy.as_dict(labels),
            "map50_95_drop_points": round(drop, 3),
            "map50_drop_points": round(100.0 * (fp32.map50 - accuracy.map50), 3),
            "per_class_drop_points": per_class_delta(fp32, accuracy, labels),
            "map50_95_drop_largest_class_shares": class_shares(fp32, accuracy, reference.matches.objects(), labels),
        }
    )
    paired = Paired.of(reference.matches, table, images, np.arange(len(images)))
    interval = ""
    if len(images) >= MIN_BOOTSTRAP_IMAGES:
        lo, hi = drop_interval(reference.matches, table)
        metrics["map50_95_drop_ci95_points"] = [round(100.0 * lo, 3), round(100.0 * hi, 3)]
        interval = f" (95 % interval over {len(images)} images {100 * lo:.2f} to {100 * hi:.2f})"
    mirrored, mirrored_words = _with_mirrors(reference, views, scored, images, groups, metrics)
    passed = drop <= config.max_map_drop
    reason = (
        f"mAP50-95 {100 * accuracy.map50_95:.2f} vs FP32 {100 * fp32.map50_95:.2f}: "
        f"drop {drop:.2f} points{interval} {'<=' if passed else '>'} budget {config.max_map_drop}{mirrored_words}"
    )
    if not passed and metrics["map50_95_drop_largest_class_shares"]:
        reason += f"; largest class shares: {share_words(metrics['map50_95_drop_largest_class_shares'][:2])}"
    if not passed and f1 < config.min_agreement:
        reason += f"; detections disagree with FP32 (F1 {f1:.3f}): boxes or scores are broken, not just noisier"
    return Verdict(passed, reason, metrics, paired, mirrored)


def _with_mirrors(
    reference: Reference,
    views: Sequence[EvalImage],
    scored: list[ImageBoxes],
    images: Sequence[EvalImage],
    groups: np.ndarray,
    metrics: dict,
) -> tuple[Paired | None, str]:
    """The drop over each image and its mirror (report only) into ``metrics``; -> its pairing, reason words."""
    if reference.with_mirrors is None:
        return None, ""
    table = MatchTable([view.truth for view in views], scored)  # type: ignore[misc]  # labelled: mirrors exist
    drop = 100.0 * (reference.with_mirrors.evaluate().map50_95 - table.evaluate().map50_95)
    metrics["map50_95_drop_points_with_mirrors"] = round(drop, 3)
    words = f"; with their mirrors {drop:.2f}"
    if len(images) >= MIN_BOOTSTRAP_IMAGES:
        lo, hi = drop_interval(reference.with_mirrors, table, groups=groups)
        metrics["map50_95_drop_ci95_points_with_mirrors"] = [round(100.0 * lo, 3), round(100.0 * hi, 3)]
        words += f" ({100 * lo:.2f} to {100 * hi:.2f}; report only)"
    return Paired.of(reference.with_mirrors, table, images, groups), words


def judge_holdout(
    reference: Reference, candidate: Artifact, frames: Sequence[EvalImage], config: GateConfig
) -> Verdict:
    """Label-free: detections on frames from the deployment camera must agree with FP32."""
    f1 = agreement(
        reference.detections,
        detect_all(candidate, frames, threads=config.threads),
        reference.artifact.manifest.decoder.score_threshold,
    )
    passed = f1 >= config.min_agreement
    return Verdict(
        passed,
        f"holdout agreement F1 {f1:.3f} {'>=' if passed else '<'} {config.min_agreement}",
        {"agreement_f1_iou50": round(f1, 4), "images": len(frames)},
    )


@dataclass(frozen=True)
class FoldResult:
    name: str
    verdict: Verdict  # the evaluation images' verdict (or the holdout's when there are no images)
    holdout: Verdict | None = None

    @property
    def passed(self) -> bool:
        return self.verdict.passed and (self.holdout is None or self.holdout.passed)

    @property
    def reason(self) -> str:
        failed = [v.reason for v in (self.verdict, self.holdout) if v is not None and not v.passed]
        return "; ".join(failed) or self.verdict.reason

    def as_dict(self) -> dict:
        metrics = {k: v for k, v in self.verdict.metrics.items() if k != "per_class_drop_points"}
        return {
            "name": self.name,
            "passed": self.passed,
            "reason": self.reason,
            "metrics": metrics,
            "holdout": self.holdout.metrics if self.holdout is not None else None,
        }


def fold_summary(results: Sequence[FoldResult]) -> dict:
    """Per-fold figures, the worst (which decides) and the spread."""
    summary: dict = {"count": len(results), "evaluated": [r.name for r in results]}
    series = {
        "map50_95_drop_points": [r.verdict.metrics.get("map50_95_drop_points") for r in results],
        "map50_95_drop_points_with_mirrors": [
            r.verdict.metrics.get("map50_95_drop_points_with_mirrors") for r in results
        ],
        "agreement_f1_iou50": [r.verdict.metrics.get("agreement_f1_iou50") for r in results],
        "holdout_agreement_f1": [r.holdout.metrics["agreement_f1_iou50"] if r.holdout else None for r in results],
    }
    for key, values in series.items():
        values = [v for v in values if v is not None]
        if not values:
            continue
        worst = max(values) if "drop_points" in key else min(values)
        summary[key] = {
            "per_fold": values,
            "worst": worst,
            "spread": round(max(values) - min(values), 4),
            "mean": round(sum(values) / len(values), 4),
        }
    intervals = [r.verdict.metrics.get("map50_95_drop_ci95_points") for r in results]
    if "map50_95_drop_points" in summary and all(ci is not None for ci in intervals):
        summary["map50_95_drop_points"]["ci95_per_fold"] = intervals
    shares = [r.verdict.metrics.get("map50_95_drop_largest_class_shares") for r in results]
    if "map50_95_drop_points" in summary and all(s is not None for s in shares):
        summary["map50_95_drop_points"]["largest_class_shares_per_fold"] = shares
    pooled = pooled_drop(results)
    if pooled is not None:
        summary["pooled"] = pooled
    return summary


def pooled_drop(results: Sequence[FoldResult]) -> dict | None:
    """Every fold's images together, each judged by the model of the fold that never calibrated on it:
    the drop over all of them and its bootstrap interval, a sharper figure than any one fold's (and the
    same with each image's mirror, ``with_mirrors``). Report only (the worst fold decides). None unless
    two or more labelled folds judged disjoint images (a separate evaluation source is judged whole by
    every fold: nothing to pool)."""
    paired = [r.verdict.paired for r in results]
    if len(paired) < 2 or any(p is None for p in paired):
        return None
    images = [h for p in paired for h in p.images]  # type: ignore[union-attr]
    if len(set(images)) != len(images):
        return None
    pooled = {"folds": len(paired), "images": len(images), **_pooled_figures(paired)}  # type: ignore[arg-type]
    mirrored = [r.verdict.mirrored for r in results]
    if all(m is not None for m in mirrored):
        pooled["with_mirrors"] = _pooled_figures(mirrored)  # type: ignore[arg-type]
    return pooled


def _pooled_figures(paired: Sequence[Paired]) -> dict:
    reference = MatchTable.pooled([p.reference for p in paired])
    candidate = MatchTable.pooled([p.candidate for p in paired])
    offsets = np.cumsum([0] + [len(p.images) for p in paired])
    groups = np.concatenate([p.groups + offset for p, offset in zip(paired, offsets)])  # each image's views together
    lo, hi = drop_interval(reference, candidate, groups=groups)
    return {
        "map50_95_drop_points": round(100.0 * (reference.evaluate().map50_95 - candidate.evaluate().map50_95), 3),
        "ci95_points": [round(100.0 * lo, 3), round(100.0 * hi, 3)],
    }


@dataclass(frozen=True)
class Attempt:
    strategy: Strategy
    verdict: Verdict
    build: dict
    seconds: float
    folds: tuple[FoldResult, ...] = ()
    artifact: Artifact | None = None  # fold 1's build, kept until the conversion's work directory goes
    source: str | None = None  # which FP32 model was quantised, when it was not the reference (distilled, refit)

    def as_dict(self) -> dict:
        return {
            **({"source": self.source} if self.source else {}),
            "strategy": self.strategy.describe(),
            "passed": self.verdict.passed,
            "reason": self.verdict.reason,
            "metrics": self.verdict.metrics,
            "build": self.build,
            "seconds": round(self.seconds, 2),
            "folds": [f.as_dict() for f in self.folds],
        }


@dataclass(frozen=True)
class GateResult:
    attempts: list[Attempt]
    artifact: Artifact | None  # the first passing artifact (fold 1's), moved to its final place; None if all failed

    @property
    def passed(self) -> bool:
        return self.artifact is not None

    @property
    def best(self) -> Attempt | None:
        """The attempt that came closest: the passing one, else the smallest mAP50-95 drop (with
        labels) or the highest agreement with FP32 (label-free). None when nothing was tried."""
        if self.passed:
            return self.attempts[-1]
        return min(self.attempts, key=_shortfall, default=None)


def _shortfall(attempt: Attempt) -> float:
    """Lower is closer to passing (every attempt of one gate run is judged the same way)."""
    metrics = attempt.verdict.metrics
    if "map50_95_drop_points" in metrics:
        return float(metrics["map50_95_drop_points"])
    return -float(metrics.get("agreement_f1_iou50", 0.0))


# build(strategy, directory) -> (artifact written in directory, build info for the report); one per fold,
# made by ``builder_for(fold_index)`` (each fold calibrates on its own images).
Builder = Callable[[Strategy, Path], "tuple[Artifact, dict]"]


class References:
    """FP32 detections per fold, computed the first time a fold is judged."""

    def __init__(self, reference: Artifact, folds: Sequence[Fold], config: GateConfig) -> None:
        self._reference, self._folds, self._config = reference, folds, config
        self._cache: dict[int, tuple[Reference | None, Reference | None]] = {}

    def __call__(self, index: int) -> tuple[Reference | None, Reference | None]:
        if index not in self._cache:
            fold = self._folds[index]
            self._cache[index] = tuple(
                evaluate_reference(self._reference, list(s), self._config) if s else None
                for s in (fold.images, fold.holdout)
            )  # type: ignore[assignment]
        return self._cache[index]


def judge_fold(
    refs: tuple[Reference | None, Reference | None], candidate: Artifact, fold: Fold, config: GateConfig
) -> FoldResult:
    images_ref, holdout_ref = refs
    holdout = judge_holdout(holdout_ref, candidate, fold.holdout, config) if holdout_ref is not None else None
    if images_ref is None:
        return FoldResult(fold.name, holdout)  # type: ignore[arg-type]
    return FoldResult(fold.name, judge(images_ref, candidate, fold.images, config), holdout)


def _combined(results: Sequence[FoldResult], total: int) -> Verdict:
    """Fold 1's metrics (the artifact that ships) plus every fold's; the worst fold's reason decides."""
    failed = [r for r in results if not r.passed]
    passed = not failed and len(results) == total
    reason = (
        results[0].reason
        if total == 1
        else (
            f"all {total} folds pass; worst: {_worst(results)}" if passed else f"{failed[0].name}: {failed[0].reason}"
        )
    )
    metrics = dict(results[0].verdict.metrics)
    if results[0].holdout is not None:
        metrics["holdout_agreement_f1"] = results[0].holdout.metrics["agreement_f1_iou50"]
    metrics["folds"] = fold_summary(results)
    return Verdict(passed, reason, metrics)


def _worst(results: Sequence[FoldResult]) -> str:
    drops = [(r.verdict.metrics.get("map50_95_drop_points"), r) for r in results]
    if all(d is not None for d, _ in drops):
        drop, result = max(drops, key=lambda pair: pair[0])
        return (
            f"{result.name} drop {drop:.2f} points (spread {max(d for d, _ in drops) - min(d for d, _ in drops):.2f})"
        )
    return min((r for r in results), key=lambda r: r.verdict.metrics.get("agreement_f1_iou50", 1.0)).reason


def run_gate(
    builder_for: Callable[[int], Builder],
    references: References,
    folds: Sequence[Fold],
    strategies: Sequence[Strategy],
    config: GateConfig,
    work_dir: Path,
    log: Callable[[str], None] = lambda _m: None,
) -> GateResult:
    """Try ``strategies`` in order; keep the first whose artifact passes on every fold (worst fold decides).

    Fold 1's artifact is the one that ships; the other folds' are judged and deleted. A strategy stops at its
    first failing fold. Failed fold-1 builds stay in ``work_dir`` (the report times the first, all-INT8 rung
    beside the accepted one: what the float layers cost); the caller deletes ``work_dir``."""
    attempts: list[Attempt] = []
    for index, strategy in enumerate(strategies):
        started = time.perf_counter()
        results: list[FoldResult] = []
        shipped, info = None, {}
        for f, fold in enumerate(folds):
            directory = Path(work_dir) / f"attempt{index}-{strategy.name}" / f"fold{f + 1}"
            artifact, built = builder_for(f)(strategy, directory)
            results.append(judge_fold(references(f), artifact, fold, config))
            if f == 0:
                shipped, info = artifact, built
            else:
                shutil.rmtree(directory, ignore_errors=True)
            if len(folds) > 1:
                log(
                    f"[gate] {strategy.name} {fold.name}: {'pass' if results[-1].passed else 'fail'}: {results[-1].reason}"
                )
            if not results[-1].passed:
                break
        verdict = _combined(results, len(folds))
        attempts.append(Attempt(strategy, verdict, info, time.perf_counter() - started, tuple(results), shipped))
        log(f"[gate] {strategy.name}: {'PASS' if verdict.passed else 'fail'}: {verdict.reason}")
        if verdict.passed:
            return GateResult(attempts, shipped)
    return GateResult(attempts, None)

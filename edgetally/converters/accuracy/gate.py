"""The accuracy gate: an INT8 artifact is accepted only if it is still as accurate as FP32.

With labels: the mAP50-95 drop (points, paired on the same images) must be <= the budget.
Without labels: detections at the deployment threshold must agree with FP32 (F1 at IoU 0.5).
``run_gate`` tries strategies in order and keeps the first artifact that passes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgetally.converters.accuracy.evaluate import EvalImage, agreement, detect_all, score
from edgetally.converters.accuracy.metrics import ImageBoxes, MapResult
from edgetally.converters.accuracy.strategy import Strategy
from edgetally.artifact import Artifact

DEFAULT_MAX_MAP_DROP = 1.0  # mAP50-95 points
# Label-free floor: measured FP32-vs-INT8 F1 for good YOLOX-nano INT8 builds was 0.90-0.94,
# the known-bad TFLite (boxes collapsed) about 0.0; near-threshold flips cost the rest.
DEFAULT_MIN_AGREEMENT = 0.85


@dataclass(frozen=True)
class GateConfig:
    max_map_drop: float = DEFAULT_MAX_MAP_DROP
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    threads: int = 2


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Reference:
    """FP32 detections and scores on the evaluation images, computed once per gate run."""

    artifact: Artifact
    detections: list[ImageBoxes]
    accuracy: MapResult | None


def evaluate_reference(reference: Artifact, images: Sequence[EvalImage], config: GateConfig) -> Reference:
    detections = detect_all(reference, images, threads=config.threads)
    return Reference(reference, detections, score(images, detections))


def per_class_delta(reference: MapResult, candidate: MapResult, labels: Sequence[str]) -> dict[str, float]:
    """mAP50-95 points lost per class (positive = worse), worst first."""
    deltas = {}
    for cls, (ap, _) in reference.per_class.items():
        name = labels[cls] if cls < len(labels) else str(cls)
        deltas[name] = round(100.0 * (ap - candidate.per_class.get(cls, (0.0, 0.0))[0]), 3)
    return dict(sorted(deltas.items(), key=lambda kv: -kv[1]))


def judge(reference: Reference, candidate: Artifact, images: Sequence[EvalImage], config: GateConfig) -> Verdict:
    """Compare ``candidate`` with the FP32 reference on the same images."""
    detections = detect_all(candidate, images, threads=config.threads)
    threshold = reference.artifact.manifest.decoder.score_threshold
    f1 = agreement(reference.detections, detections, threshold)
    metrics: dict = {"agreement_f1_iou50": round(f1, 4), "agreement_score_threshold": threshold, "images": len(images)}
    accuracy = score(images, detections)
    if accuracy is None or reference.accuracy is None:
        passed = f1 >= config.min_agreement
        reason = f"agreement F1 {f1:.3f} {'>=' if passed else '<'} {config.min_agreement} (no labels: label-free check)"
        return Verdict(passed, reason, metrics)
    labels = reference.artifact.manifest.labels
    drop = 100.0 * (reference.accuracy.map50_95 - accuracy.map50_95)
    metrics.update({
        "fp32": reference.accuracy.as_dict(labels), "candidate": accuracy.as_dict(labels),
        "map50_95_drop_points": round(drop, 3),
        "map50_drop_points": round(100.0 * (reference.accuracy.map50 - accuracy.map50), 3),
        "per_class_drop_points": per_class_delta(reference.accuracy, accuracy, labels),
    })
    passed = drop <= config.max_map_drop
    reason = (f"mAP50-95 {100 * accuracy.map50_95:.2f} vs FP32 {100 * reference.accuracy.map50_95:.2f}: "
              f"drop {drop:.2f} points {'<=' if passed else '>'} budget {config.max_map_drop}")
    if not passed and f1 < config.min_agreement:
        reason += f"; detections disagree with FP32 (F1 {f1:.3f}): boxes or scores are broken, not just noisier"
    return Verdict(passed, reason, metrics)


@dataclass(frozen=True)
class Attempt:
    strategy: Strategy
    verdict: Verdict
    build: dict
    seconds: float

    def as_dict(self) -> dict:
        return {"strategy": self.strategy.describe(), "passed": self.verdict.passed, "reason": self.verdict.reason,
                "metrics": self.verdict.metrics, "build": self.build, "seconds": round(self.seconds, 2)}


@dataclass(frozen=True)
class GateResult:
    attempts: list[Attempt]
    artifact: Artifact | None  # the first passing artifact, moved to its final place; None if all failed

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


# build(strategy, directory) -> (artifact written in directory, build info for the report)
Builder = Callable[[Strategy, Path], "tuple[Artifact, dict]"]


def run_gate(build: Builder, reference: Reference, images: Sequence[EvalImage], strategies: Sequence[Strategy],
             config: GateConfig, work_dir: Path, log: Callable[[str], None] = lambda _m: None) -> GateResult:
    """Try ``strategies`` in order; keep the first whose artifact passes. Failed builds are deleted."""
    attempts: list[Attempt] = []
    for index, strategy in enumerate(strategies):
        directory = Path(work_dir) / f"attempt{index}-{strategy.name}"
        started = time.perf_counter()
        artifact, info = build(strategy, directory)
        verdict = judge(reference, artifact, images, config)
        attempts.append(Attempt(strategy, verdict, info, time.perf_counter() - started))
        log(f"[gate] {strategy.name}: {'PASS' if verdict.passed else 'fail'}: {verdict.reason}")
        if verdict.passed:
            return GateResult(attempts, artifact)
        shutil.rmtree(directory, ignore_errors=True)
    return GateResult(attempts, None)

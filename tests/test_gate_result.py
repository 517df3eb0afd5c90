"""A failed accuracy gate reports the attempt that came closest, not merely the last one."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="the converters need the convert extra")

from edgetally.converters.accuracy.gate import Attempt, GateResult, Verdict
from edgetally.converters.accuracy.strategy import Strategy


def _attempt(name: str, passed: bool = False, **metrics: float) -> Attempt:
    return Attempt(Strategy(name), Verdict(passed, f"{name} reason", metrics), {}, 1.0)


@pytest.mark.parametrize(
    "attempts, best",
    [
        # with labels: the smallest mAP50-95 drop, wherever it is in the ladder
        (
            [
                _attempt("a", map50_95_drop_points=9.0),
                _attempt("b", map50_95_drop_points=1.4),
                _attempt("c", map50_95_drop_points=2.5),
            ],
            "b",
        ),
        # negative drops (INT8 scored above FP32) are the best of all
        ([_attempt("a", map50_95_drop_points=3.0), _attempt("b", map50_95_drop_points=-0.2)], "b"),
        # label-free: the highest agreement with FP32
        (
            [
                _attempt("a", agreement_f1_iou50=0.62),
                _attempt("b", agreement_f1_iou50=0.81),
                _attempt("c", agreement_f1_iou50=0.40),
            ],
            "b",
        ),
        ([], None),
    ],
)
def test_best_attempt_of_a_failed_gate(attempts: list[Attempt], best: str | None) -> None:
    result = GateResult(attempts, None)
    assert not result.passed
    assert (result.best.strategy.name if result.best else None) == best


def test_best_attempt_of_a_passed_gate_is_the_accepted_one() -> None:
    attempts = [_attempt("a", map50_95_drop_points=0.5), _attempt("b", passed=True, map50_95_drop_points=0.9)]
    result = GateResult(attempts, artifact=object())  # type: ignore[arg-type]
    assert result.best is attempts[-1]

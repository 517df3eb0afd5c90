"""Speed is stated in words: a ratio never appears without 'faster' / 'SLOWER', and a profile may act on it."""

from __future__ import annotations

import pytest

from edgetally.converters.build import ship_fp32_instead
from edgetally.converters.report import speed_verdict
from edgetally.latency import speed_words


@pytest.mark.parametrize(
    ("ratio", "words"),
    [
        (0.62, "INT8 0.62x FP32: faster"),
        (1.0, "no faster (within 3%)"),
        (1.029, "no faster"),
        (1.17, "INT8 1.17x FP32: SLOWER"),
    ],
)
def test_speed_words(ratio: float, words: str) -> None:
    assert words in speed_words(ratio)


def _table(fp32: list[float], candidate: list[float], own: list[float] | None = None) -> dict:
    rows = lambda values: [{"threads": t, "p50_ms": v} for t, v in zip((1, 2), values, strict=True)]  # noqa: E731
    return {"fp32": rows(fp32), "candidate": rows(candidate), **({"runtime_fp32": rows(own)} if own else {})}


def test_verdict_is_decided_at_the_boards_thread_count() -> None:
    verdict = speed_verdict(_table([10.0, 6.0], [11.7, 5.0]), "int8", threads=4)
    assert verdict["deciding_threads"] == 2 and verdict["faster"] and not verdict["slower"]
    assert "INT8 1.17x ORT FP32: SLOWER at 1 thread" in verdict["statement"]
    assert "INT8 0.83x ORT FP32: faster at 2 threads" in verdict["statement"]
    one = speed_verdict(_table([10.0, 6.0], [11.7, 5.0]), "int8", threads=1)
    assert one["deciding_threads"] == 1 and one["slower"]


def test_verdict_compares_with_the_runtimes_own_fp32_when_timed() -> None:
    verdict = speed_verdict(_table([10.0, 6.0], [9.0, 5.5], own=[12.0, 7.0]), "int8")
    assert verdict["baseline"] == "runtime_fp32" and verdict["ratios_by_threads"][1] == 0.75
    assert "its runtime's FP32" in verdict["statement"]


@pytest.mark.parametrize(
    ("slower", "profile_says", "expected"), [(True, True, True), (True, False, False), (False, True, False)]
)
def test_fp32_is_shipped_instead_only_when_slower_and_the_profile_allows(
    slower: bool, profile_says: bool, expected: bool
) -> None:
    assert ship_fp32_instead({"slower": slower}, profile_says) is expected

"""Interleaved inference timing of several artifacts, and the plain-words speed verdict.

Used on the converting machine (report.json's latency table) and on the board (``edge bench``
compares an artifact with the FP32 reference it carries), so both say the same thing the same way.
Runner-side: numpy and the runtime registry only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from edgetally.artifact import Artifact


def random_frame(artifact: Artifact) -> np.ndarray:
    """A preprocessed random frame for ``artifact``'s input (the same seed for every model)."""
    from edgetally.preprocess import Preprocessor

    spec = artifact.manifest.input
    image = np.random.default_rng(0).integers(0, 255, (spec.height, spec.width, 3), dtype=np.uint8)
    return Preprocessor(spec)(image)[0].copy()


def _summary(times: list[float], threads: int) -> dict:
    return {"threads": threads, "runs": len(times), "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3)}


def measure_interleaved(artifacts: Sequence[Artifact], threads: int, runs: int = 100, warmup: int = 5,
                        runtimes: Sequence[str | None] | None = None) -> list[dict]:
    """p50/p95 ms of ``infer`` alone for every model, runs interleaved in one process.

    Interleaving (A, B, C, C, B, A, ...) makes the ratios fair on a shared machine: a burst of load
    from other processes slows every model alike instead of whichever happened to run then, and
    alternating the order removes any first/last-in-the-round cache advantage. ``runtimes``: per
    artifact, the runtime to run it with (None: its manifest's).
    """
    from edgetally.runtimes import load_runtime

    chosen = list(runtimes) if runtimes is not None else [None] * len(artifacts)
    models = [load_runtime(a, threads=threads, runtime=r) for a, r in zip(artifacts, chosen)]
    tensors = [random_frame(a) for a in artifacts]
    times: list[list[float]] = [[] for _ in artifacts]
    try:
        for step in range(warmup + runs):
            order = range(len(models)) if step % 2 == 0 else reversed(range(len(models)))
            for index in order:
                start = time.perf_counter()
                models[index].infer(tensors[index])
                if step >= warmup:
                    times[index].append((time.perf_counter() - start) * 1000.0)
    finally:
        for model in models:
            model.close()
    return [_summary(t, threads) for t in times]


def speed_words(ratio: float, what: str = "INT8", baseline: str = "FP32") -> str:
    """'0.62x FP32: faster' / '1.17x FP32: SLOWER' -- a ratio never stands alone without its meaning."""
    if ratio < 0.97:
        verdict = "faster"
    elif ratio <= 1.03:  # within 3%: noise on a shared machine
        verdict = "no faster (within 3%)"
    else:
        verdict = "SLOWER"
    return f"{what} {ratio:.2f}x {baseline}: {verdict}"

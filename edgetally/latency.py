"""Interleaved inference timing of several artifacts, and the plain-words speed verdict.

Used on the converting machine (report.json's latency table) and on the board (``edge bench``
compares an artifact with the FP32 reference it carries), so both say the same thing the same way.
Runner-side: numpy and the runtime registry only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from edgetally.artifact import REFERENCE_DIR, Artifact
from edgetally.cpu import describe_cpu


def random_frame(artifact: Artifact) -> np.ndarray:
    """A preprocessed random frame for ``artifact``'s input (the same seed for every model)."""
    from edgetally.preprocess import Preprocessor

    spec = artifact.manifest.input
    image = np.random.default_rng(0).integers(0, 255, (spec.height, spec.width, 3), dtype=np.uint8)
    return Preprocessor(spec)(image)[0].copy()


def _summary(times: list[float], threads: int) -> dict:
    return {
        "threads": threads,
        "runs": len(times),
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
    }


def measure_interleaved(
    artifacts: Sequence[Artifact],
    threads: int,
    runs: int = 100,
    warmup: int = 5,
    runtimes: Sequence[str | None] | None = None,
) -> list[dict]:
    """p50/p95 ms of ``infer`` alone for every model, runs interleaved in one process.

    Interleaving (A, B, C, C, B, A, ...) makes the ratios fair on a shared machine: a burst of load
    from other processes slows every model alike instead of whichever happened to run then, and
    alternating the order removes any first/last-in-the-round cache advantage. ``runtimes``: per
    artifact, the runtime to run it with (None: its manifest's).
    """
    from edgetally.runtimes import load_runtime

    chosen = list(runtimes) if runtimes is not None else [None] * len(artifacts)
    models = [load_runtime(a, threads=threads, runtime=r) for a, r in zip(artifacts, chosen, strict=True)]
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


def fp32_baseline(artifact: Artifact) -> tuple[Artifact, str] | None:
    """The model ``artifact`` should beat, run the way this board would run it instead, from the FP32
    reference the converter stores in ``reference/``: (artifact, description), or None if there is none.

    TensorRT: the FP16 engine of ``model.fp16.onnx`` when the artifact carries it (FP32 on a Jetson GPU is
    not the alternative anyone ships); the runtime's own FP32 build when the converter stored it
    (``reference/RUNTIME/``, OpenVINO: the IR --fallback would ship); else for OpenVINO the reference ONNX
    compiled by OpenVINO in f32; others: the reference on its own runtime (onnxruntime)."""
    m = artifact.manifest
    if m.precision == "fp32":
        return None
    if m.runtime == "tensorrt" and (artifact.directory / "model.fp16.onnx").is_file():
        from edgetally.artifact import sha256_file

        manifest = m.model_copy(
            update={
                "model_file": "model.fp16.onnx",
                "precision": "fp16",
                "model_sha256": sha256_file(artifact.directory / "model.fp16.onnx"),
            }
        )
        return Artifact(artifact.directory, manifest), "FP16 engine (model.fp16.onnx)"
    reference_dir = artifact.directory / REFERENCE_DIR
    if not (reference_dir / "manifest.json").is_file():
        return None
    own = reference_dir / m.runtime
    if (own / "manifest.json").is_file():
        return Artifact.load(own), f"FP32 build on {m.runtime} ({REFERENCE_DIR}/{m.runtime}/)"
    reference = Artifact.load(reference_dir)
    if m.runtime in ("openvino", "tensorrt"):
        manifest = reference.manifest.model_copy(update={"runtime": m.runtime, "format": _format_for(m.runtime)})
        return Artifact(reference_dir, manifest), f"FP32 reference on {m.runtime}"
    return reference, f"FP32 reference on {reference.manifest.runtime}"


def _relative(baseline: Artifact, artifact: Artifact) -> str:
    try:
        return baseline.directory.relative_to(artifact.directory).as_posix()
    except ValueError:
        return str(baseline.directory)


def _format_for(runtime: str) -> str:
    return {"openvino": "onnx", "tensorrt": "onnx-tensorrt"}[runtime]


def compare_with_fp32(artifact: Artifact, threads: int, runs: int = 50) -> dict:
    """The artifact against its FP32 baseline on this machine, interleaved: ratio and the words for it."""
    baseline = fp32_baseline(artifact)
    if baseline is None:
        return {"statement": "no FP32 baseline in the artifact (reference/ missing or already FP32)"}
    other, described = baseline
    try:
        base_row, row = measure_interleaved([other, artifact], threads, runs)
    except Exception as exc:  # the baseline's runtime may be missing on the board: say so, do not fail the bench
        return {"statement": f"cannot time the {described}: {exc}"}
    ratio = round(row["p50_ms"] / max(base_row["p50_ms"], 1e-9), 3)
    return {
        "cpu": describe_cpu(),
        "baseline": described,
        "baseline_p50_ms": base_row["p50_ms"],
        "artifact_p50_ms": row["p50_ms"],
        "ratio": ratio,
        "threads": threads,
        "runs": runs,
        "statement": speed_words(ratio, artifact.manifest.precision.upper(), described)
        + (f"; ship the FP32 build instead ({_relative(other, artifact)}/)" if ratio > 1.03 else ""),
    }

"""report.json: the proof that travels with an artifact (sizes, accuracy, latency, provenance)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgetally.artifact import Artifact

REPORT_NAME = "report.json"


def model_bytes(artifact: Artifact) -> int:
    """Size of the model file, plus OpenVINO's weights file next to an .xml."""
    path = artifact.model_path
    size = path.stat().st_size
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        size += path.with_suffix(".bin").stat().st_size
    return size


def _frame(artifact: Artifact) -> np.ndarray:
    from edgetally.preprocess import Preprocessor

    spec = artifact.manifest.input
    image = np.random.default_rng(0).integers(0, 255, (spec.height, spec.width, 3), dtype=np.uint8)
    return Preprocessor(spec)(image)[0].copy()


def _summary(times: list[float], threads: int) -> dict:
    return {"threads": threads, "runs": len(times), "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3)}


def measure_interleaved(artifacts: Sequence[Artifact], threads: int, runs: int = 100, warmup: int = 5) -> list[dict]:
    """p50/p95 ms of ``infer`` alone for every model, runs interleaved in one process.

    Interleaving (A, B, C, C, B, A, ...) makes the ratios fair on a shared machine: a burst of load
    from other processes slows every model alike instead of whichever happened to run then, and
    alternating the order removes any first/last-in-the-round cache advantage.
    """
    from edgetally.converters.accuracy.evaluate import executor_for
    from edgetally.runtimes import load_runtime

    models = [load_runtime(a, threads=threads, runtime=executor_for(a)) for a in artifacts]
    tensors = [_frame(a) for a in artifacts]
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


def measure_pair(reference: Artifact, candidate: Artifact, threads: int, runs: int = 100,
                 warmup: int = 5) -> tuple[dict, dict]:
    ref_row, cand_row = measure_interleaved([reference, candidate], threads, runs, warmup)
    return ref_row, cand_row


def latency_table(reference: Artifact, candidate: Artifact, thread_counts: tuple[int, ...] = (1, 2), runs: int = 100,
                  runtime_fp32: Artifact | None = None) -> dict:
    """FP32 on onnxruntime vs the candidate (and, if given, the candidate runtime's own FP32 build)."""
    table: dict = {"fp32": [], "candidate": []}
    models = [reference, candidate] + ([runtime_fp32] if runtime_fp32 is not None else [])
    if runtime_fp32 is not None:
        table["runtime_fp32"] = []
    for threads in thread_counts:
        rows = measure_interleaved(models, threads, runs)
        table["fp32"].append(rows[0])
        table["candidate"].append(rows[1])
        if runtime_fp32 is not None:
            table["runtime_fp32"].append(rows[2])
        if threads == 1:
            table["ratio_1_thread"] = round(rows[1]["p50_ms"] / max(rows[0]["p50_ms"], 1e-9), 3)
            if runtime_fp32 is not None:
                table["ratio_1_thread_vs_runtime_fp32"] = round(rows[1]["p50_ms"] / max(rows[2]["p50_ms"], 1e-9), 3)
    own = ("; runtime_fp32 = the same runtime's FP32 build (OpenVINO: INFERENCE_PRECISION_HINT=f32)"
           if runtime_fp32 is not None else "")
    table["note"] = (f"infer only, random frame, p50/p95 over {runs} runs per model, all models interleaved in one "
                     "process (load from other processes hits them alike); fp32 = the reference ONNX on onnxruntime"
                     f"{own}; measured on the converting machine: measure on the target too")
    return table


def write_report(directory: Path, report: dict) -> Path:
    path = Path(directory) / REPORT_NAME
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def read_report(directory: Path) -> dict | None:
    path = Path(directory) / REPORT_NAME
    return json.loads(path.read_text()) if path.is_file() else None

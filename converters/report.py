"""report.json: the proof that travels with an artifact (sizes, accuracy, latency, provenance)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from edge.artifact import Artifact

REPORT_NAME = "report.json"


def model_bytes(artifact: Artifact) -> int:
    """Size of the model file, plus OpenVINO's weights file next to an .xml."""
    path = artifact.model_path
    size = path.stat().st_size
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        size += path.with_suffix(".bin").stat().st_size
    return size


def _frame(artifact: Artifact) -> np.ndarray:
    from edge.preprocess import Preprocessor

    spec = artifact.manifest.input
    image = np.random.default_rng(0).integers(0, 255, (spec.height, spec.width, 3), dtype=np.uint8)
    return Preprocessor(spec)(image)[0].copy()


def _summary(times: list[float], threads: int) -> dict:
    return {"threads": threads, "runs": len(times), "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3)}


def measure_pair(reference: Artifact, candidate: Artifact, threads: int, runs: int = 40, warmup: int = 5) -> tuple[dict, dict]:
    """p50/p95 ms of ``infer`` alone for both models, runs interleaved.

    Interleaving (A, B, A, B, ...) makes the ratio fair on a shared machine: a burst of load from
    other processes slows both models alike instead of whichever happened to run then.
    """
    from converters.evaluate import executor_for
    from edge.runtimes import load_runtime

    models = [load_runtime(a, threads=threads, runtime=executor_for(a)) for a in (reference, candidate)]
    tensors = [_frame(reference), _frame(candidate)]
    times: list[list[float]] = [[], []]
    try:
        for step in range(warmup + runs):
            for index, (model, tensor) in enumerate(zip(models, tensors)):
                start = time.perf_counter()
                model.infer(tensor)
                if step >= warmup:
                    times[index].append((time.perf_counter() - start) * 1000.0)
    finally:
        for model in models:
            model.close()
    return _summary(times[0], threads), _summary(times[1], threads)


def latency_table(reference: Artifact, candidate: Artifact, thread_counts: tuple[int, ...] = (1, 2), runs: int = 40) -> dict:
    table: dict = {"fp32": [], "candidate": []}
    for threads in thread_counts:
        ref_row, cand_row = measure_pair(reference, candidate, threads, runs)
        table["fp32"].append(ref_row)
        table["candidate"].append(cand_row)
        if threads == 1:
            table["ratio_1_thread"] = round(cand_row["p50_ms"] / max(ref_row["p50_ms"], 1e-9), 3)
    table["note"] = ("infer only, random frame, FP32 = the reference ONNX on onnxruntime, runs interleaved; "
                     "measured on the converting machine: measure on the target too")
    return table


def write_report(directory: Path, report: dict) -> Path:
    path = Path(directory) / REPORT_NAME
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def read_report(directory: Path) -> dict | None:
    path = Path(directory) / REPORT_NAME
    return json.loads(path.read_text()) if path.is_file() else None

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


def measure_latency(artifact: Artifact, threads: int, runs: int = 40, warmup: int = 5) -> dict:
    """p50/p95 milliseconds of ``infer`` alone (no pre/post-processing) on a fixed random frame."""
    from converters.evaluate import executor_for
    from edge.preprocess import Preprocessor
    from edge.runtimes import load_runtime

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (artifact.manifest.input.height, artifact.manifest.input.width, 3), dtype=np.uint8)
    tensor, _ = Preprocessor(artifact.manifest.input)(image)
    model = load_runtime(artifact, threads=threads, runtime=executor_for(artifact))
    try:
        for _ in range(warmup):
            model.infer(tensor)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model.infer(tensor)
            times.append((time.perf_counter() - start) * 1000.0)
    finally:
        model.close()
    return {"threads": threads, "runs": runs, "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3)}


def latency_table(reference: Artifact, candidate: Artifact, thread_counts: tuple[int, ...] = (1, 2), runs: int = 40) -> dict:
    table: dict = {"fp32": [], "candidate": []}
    for threads in thread_counts:
        table["fp32"].append(measure_latency(reference, threads, runs))
        table["candidate"].append(measure_latency(candidate, threads, runs))
    one = {row["threads"]: row for row in table["fp32"]}, {row["threads"]: row for row in table["candidate"]}
    if 1 in one[0] and 1 in one[1]:
        table["speedup_1_thread"] = round(one[0][1]["p50_ms"] / max(one[1][1]["p50_ms"], 1e-9), 3)
        table["ratio_1_thread"] = round(one[1][1]["p50_ms"] / max(one[0][1]["p50_ms"], 1e-9), 3)
    table["note"] = "infer only, random frame, measured on the converting machine: measure on the target too"
    return table


def write_report(directory: Path, report: dict) -> Path:
    path = Path(directory) / REPORT_NAME
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def read_report(directory: Path) -> dict | None:
    path = Path(directory) / REPORT_NAME
    return json.loads(path.read_text()) if path.is_file() else None

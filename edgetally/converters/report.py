"""report.json: the proof that travels with an artifact (sizes, accuracy, latency, provenance)."""

from __future__ import annotations

import json
from pathlib import Path

from edgetally.artifact import Artifact
from edgetally.cpu import describe_cpu
from edgetally.latency import measure_interleaved, speed_words

REPORT_NAME = "report.json"
SLOWER_ABOVE = 1.03  # latency ratios within 3% of FP32 are noise on a shared machine, not "slower"


def model_bytes(artifact: Artifact) -> int:
    """Size of the model file, plus OpenVINO's weights file next to an .xml."""
    path = artifact.model_path
    size = path.stat().st_size
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        size += path.with_suffix(".bin").stat().st_size
    return size


def latency_table(
    reference: Artifact,
    candidate: Artifact,
    thread_counts: tuple[int, ...] = (1, 2),
    runs: int = 100,
    runtime_fp32: Artifact | None = None,
    executor: str | None = None,
) -> dict:
    """FP32 on onnxruntime vs the candidate (and, if given, the candidate runtime's own FP32 build).

    executor: the runtime that runs the candidate here when it is not its own (TensorRT QDQ: onnxruntime)."""
    table: dict = {"fp32": [], "candidate": []}
    models = [reference, candidate] + ([runtime_fp32] if runtime_fp32 is not None else [])
    runtimes = [None, executor] + ([None] if runtime_fp32 is not None else [])
    if runtime_fp32 is not None:
        table["runtime_fp32"] = []
    for threads in thread_counts:
        rows = measure_interleaved(models, threads, runs, runtimes=runtimes)
        table["fp32"].append(rows[0])
        table["candidate"].append(rows[1])
        if runtime_fp32 is not None:
            table["runtime_fp32"].append(rows[2])
        if threads == 1:
            table["ratio_1_thread"] = round(rows[1]["p50_ms"] / max(rows[0]["p50_ms"], 1e-9), 3)
            if runtime_fp32 is not None:
                table["ratio_1_thread_vs_runtime_fp32"] = round(rows[1]["p50_ms"] / max(rows[2]["p50_ms"], 1e-9), 3)
    own = (
        "; runtime_fp32 = the same runtime's FP32 build (OpenVINO: INFERENCE_PRECISION_HINT=f32)"
        if runtime_fp32 is not None
        else ""
    )
    table["note"] = (
        f"infer only, random frame, p50/p95 over {runs} runs per model, all models interleaved in one "
        "process (load from other processes hits them alike); fp32 = the reference ONNX on onnxruntime"
        f"{own}; measured on the converting machine (cpu): measure on the target too"
    )
    table["cpu"] = describe_cpu()
    return table


def speed_verdict(latency: dict, precision: str, threads: int = 1) -> dict:
    """Is the artifact faster than the FP32 it replaces (its runtime's own FP32 build when timed, else ORT FP32)?

    Decided at the largest measured thread count <= ``threads`` (the board's setting); every count is stated."""
    baseline_key = "runtime_fp32" if "runtime_fp32" in latency else "fp32"
    rows = list(zip(latency[baseline_key], latency["candidate"], strict=True))
    ratios = {row["threads"]: round(cand["p50_ms"] / max(row["p50_ms"], 1e-9), 3) for row, cand in rows}
    deciding = max((t for t in ratios if t <= threads), default=min(ratios))
    baseline = "its runtime's FP32" if baseline_key == "runtime_fp32" else "ORT FP32"
    what = precision.upper()
    statements = [f"{speed_words(r, what, baseline)} at {t} thread{'s' if t > 1 else ''}" for t, r in ratios.items()]
    return {
        "baseline": baseline_key,
        "ratios_by_threads": ratios,
        "deciding_threads": deciding,
        "faster": ratios[deciding] < 1.0,
        "slower": ratios[deciding] > SLOWER_ABOVE,
        "statement": "; ".join(statements),
        "note": "measured on the converting machine; run `edge bench --model ARTIFACT` on the board",
    }


def write_report(directory: Path, report: dict) -> Path:
    path = Path(directory) / REPORT_NAME
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def read_report(directory: Path) -> dict | None:
    path = Path(directory) / REPORT_NAME
    return json.loads(path.read_text()) if path.is_file() else None

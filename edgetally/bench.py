"""`edge bench`: inference-only vs full-pipeline throughput, measured in one run on the same frames.

Inference-only = the detector's ``infer`` on already-preprocessed tensors (the ceiling). Pipeline =
the real `edge run` path (capture + decode + preprocess on one thread, inference on another, decode +
track + count on the frame loop). Their ratio is what the threading buys or costs; both come from one
process so machine noise affects them alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.build import build_pipeline
from edgetally.capture import open_source
from edgetally.config.models import LineSettings, RunSettings
from edgetally.detector import Detector
from edgetally.errors import CameraError
from edgetally.structures import Frame

_WARMUP = 5
_MAX_CACHED = 200


def _percentiles(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms, dtype=np.float64)
    return {f"p{q}": round(float(np.percentile(arr, q)), 3) for q in (50, 90, 95, 99)}


def _first_frames(source: str) -> tuple[list[Frame], int | None]:
    """Up to _MAX_CACHED decoded frames, and the source's frame count when it knows it."""
    frames: list[Frame] = []
    src = open_source(source)
    try:
        total = src.frame_count
        for frame in src:
            frames.append(frame)
            if len(frames) >= _MAX_CACHED:
                break
    finally:
        src.close()
    if not frames:
        raise CameraError(f"{source}: no frames to benchmark on")
    return frames, total


def _inference_only(detector: Detector, frames: list[Frame], n: int) -> list[float]:
    """Time the model alone over n preprocessed tensors (the cached frames, cycled)."""
    pre = detector.new_preprocessor()
    tensors = [pre(f.image)[0].copy() for f in frames]
    for t in tensors[:_WARMUP]:
        detector.infer(t)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        detector.infer(tensors[i % len(tensors)])
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def run_bench(model: Path, source: str, threads: int = 2, max_frames: int | None = None) -> dict[str, Any]:
    frames, total = _first_frames(source)
    n = min(v for v in (max_frames, total) if v) if (max_frames or total) else len(frames)
    # A vertical line through the middle so the counting stage does real work.
    mid = frames[0].width / 2
    settings = RunSettings(
        model=model,
        source=source,
        threads=threads,
        max_frames=max_frames,
        lines=[LineSettings(name="bench", points=[(mid, 0.0), (mid, float(frames[0].height))])],
    )
    detector = Detector.from_artifact(model, threads=threads)
    infer_ms = _inference_only(detector, frames, n)
    inference_fps = 1000.0 / float(np.mean(infer_ms))
    summary = build_pipeline(settings, sinks=[]).run()
    pipe_ms = list(summary.infer_ms)
    return {
        "model": str(model),
        "runtime": detector.manifest.runtime,
        "precision": detector.manifest.precision,
        "threads": threads,
        "frames": summary.frames,
        "inference_fps": round(inference_fps, 2),
        "pipeline_fps": round(summary.fps, 2),
        "pipeline_over_inference": round(summary.fps / inference_fps, 3),
        "infer_ms_p50": round(float(np.percentile(infer_ms, 50)), 3),
        "infer_ms": _percentiles(infer_ms),
        "pipeline_infer_ms": _percentiles(pipe_ms) if pipe_ms else {},
        "pipeline_frame_ms_mean": round(1000.0 * summary.seconds / max(summary.frames, 1), 3),
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned text: throughput, then latency percentiles in milliseconds."""
    quantiles = list(report["infer_ms"])
    rows = [("latency (ms)", "".join(f"{q:>10}" for q in quantiles))]
    for name, key in (("  inference only", "infer_ms"), ("  inside the pipeline", "pipeline_infer_ms")):
        rows.append((name, "".join(f"{report[key].get(q, float('nan')):10.2f}" for q in quantiles)))
    rows.append(("  whole frame (mean)", f"{report['pipeline_frame_ms_mean']:10.2f}"))
    return "\n".join(
        [
            f"model        {report['model']} ({report['runtime']}, {report['precision']}, {report['threads']} threads)",
            f"frames       {report['frames']}",
            f"throughput   inference only {report['inference_fps']:.1f} fps, full pipeline {report['pipeline_fps']:.1f} fps "
            f"({report['pipeline_over_inference']:.2f} x inference only)",
            *(f"{name:<22}{cells}" for name, cells in rows),
        ]
    )

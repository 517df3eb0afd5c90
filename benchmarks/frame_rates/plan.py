"""What the benchmark runs: every (dataset, stack, setting, phase) pass, and their aggregation.

Passes are independent, so they run in a process pool (``--jobs``); each worker decodes a
video's frames once (grey, for the flow) and keeps the last few.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.frame_rates.clips import Clip
from benchmarks.frame_rates.detections import iter_frames
from benchmarks.frame_rates.runs import (
    PEER_THRESHOLDS,
    RunResult,
    Setting,
    detect_mask,
    error,
    input_divisor,
    run_ideal,
    run_ours,
    run_peer,
)

INPUT_RATES = (30.0, 15.0, 8.0, 5.0, 3.0)
DETECT_RATES = (15.0, 8.0, 5.0, 3.0)
STACKS = ("ours", "peer", "peer-thr", "ideal")


@dataclass(frozen=True)
class Params:
    """Overrides of our stack's settings (KEY=VALUE on the command line)."""

    tracker: dict[str, Any] = field(default_factory=dict)
    counter: dict[str, Any] = field(default_factory=dict)
    flow: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    dataset: str
    clip: int  # index into DATASETS[dataset]
    stack: str
    setting: Setting


_CLIPS: dict[str, list[Clip]] = {}  # set by _init in every worker
_PARAMS = Params()


def phases(fps: float, rate: float, count: int) -> list[int]:
    """Up to ``count`` first-frame offsets spread over one grid period of fps / rate frames."""
    period = max(1, round(fps / rate))
    n = min(count, period)
    return [j * period // n for j in range(n)]


def make_tasks(
    datasets: dict[str, list[Clip]],
    stacks: tuple[str, ...],
    n_phases: int,
    input_rates: tuple[float, ...] = INPUT_RATES,
    detect_rates: tuple[float, ...] = DETECT_RATES,
) -> list[Task]:
    tasks = []
    for name, clips in datasets.items():
        for ci, clip in enumerate(clips):
            modes = [("input", r) for r in input_rates]
            if clip.video is not None:
                modes += [("detect", r) for r in detect_rates if r < clip.fps * 0.999]
            for mode, rate in modes:
                for ph in phases(clip.fps, rate, n_phases):
                    tasks += [
                        Task(name, ci, s, Setting(mode, rate, ph))
                        for s in stacks
                        if s != "ideal" or clip.true_ids is not None  # true identities: MOT17-derived only
                    ]
    return tasks


def run_all(
    datasets: dict[str, list[Clip]], tasks: list[Task], params: Params, jobs: int, log: Callable[[str], None]
) -> list[tuple[Task, RunResult]]:
    _init(datasets, params)
    if jobs <= 1:
        return [(t, _run(t)) for t in tasks]
    # spawn, not fork: the parent has run onnxruntime and OpenCV, whose thread pools do not
    # survive a fork (the children hang on their locks).
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(jobs, initializer=_init, initargs=(datasets, params)) as pool:
        results = []
        for n, res in enumerate(pool.imap(_run, tasks, chunksize=1), 1):
            results.append(res)
            if n % 50 == 0:
                log(f"{n} / {len(tasks)} passes")
    return list(zip(tasks, results))


def _init(datasets: dict[str, list[Clip]], params: Params) -> None:
    global _PARAMS
    _CLIPS.clear()
    _CLIPS.update(datasets)
    _PARAMS = params


def _run(task: Task) -> RunResult:
    cv2.setNumThreads(1)  # one core per pass, as on a board's frame loop
    clip = _CLIPS[task.dataset][task.clip]
    mask = detect_mask(clip, task.setting)
    flow = task.setting.mode == "detect"
    grey = _grey(str(clip.video)) if flow and clip.video is not None else None
    if task.stack == "ideal":
        return run_ideal(clip, mask)
    if task.stack == "ours":
        return run_ours(clip, mask, flow, grey, _PARAMS.tracker, _PARAMS.counter, _PARAMS.flow)
    fed = clip.fps if flow else clip.fps / input_divisor(clip.fps, task.setting.rate)
    return run_peer(clip, mask, flow, grey, fed, PEER_THRESHOLDS if task.stack == "peer-thr" else None)


@functools.lru_cache(maxsize=2)
def _grey(video: str) -> list[np.ndarray]:
    return [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in iter_frames(Path(video))]


def aggregate(datasets: dict[str, list[Clip]], results: list[tuple[Task, RunResult]]) -> list[dict[str, Any]]:
    """One row per (dataset, mode, rate, stack): error per phase (clips pooled), mean, min, max."""
    groups: dict[tuple, dict[int, list]] = {}
    for task, res in results:
        key = (task.dataset, task.setting.mode, task.setting.rate, task.stack)
        groups.setdefault(key, {}).setdefault(task.setting.phase, []).append((task, res))
    rows = []
    for (name, mode, rate, stack), by_phase in groups.items():
        per_phase = [error([(datasets[name][t.clip], r.counts) for t, r in runs]) for runs in by_phase.values()]
        runs = [r for group in by_phase.values() for _, r in group]
        clip0 = datasets[name][0]
        flow_ms = [v for r in runs for v in r.flow_ms]
        frames = sum(r.frames for r in runs)
        rows.append(
            {
                "dataset": name,
                "mode": mode,
                "rate": rate,
                "stack": stack,
                "fps_fed": round(clip0.fps / input_divisor(clip0.fps, rate), 2) if mode == "input" else clip0.fps,
                "true": per_phase[0]["true"],
                "phases": len(per_phase),
                "abs_error_phases": [round(p["abs_error"], 4) for p in per_phase],
                "abs_error": float(np.mean([p["abs_error"] for p in per_phase])),
                "net_error": float(np.mean([p["net_error"] for p in per_phase])),
                "detected_share": sum(r.detected for r in runs) / max(frames, 1),
                "flow_ms_median": float(np.median(flow_ms)) if flow_ms else 0.0,
                "track_ms_per_frame": sum(r.track_ms for r in runs) / max(frames, 1),
            }
        )
    return rows


def default_jobs() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 16))

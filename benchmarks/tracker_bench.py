"""Time Tracker.update per frame with 20 and 100 moving objects (median, p95).

Usage: .venv/bin/python benchmarks/tracker_bench.py [--json] [--frames N]
Synthetic scene: objects move at constant velocity with box jitter, 10 % of detections get a
low score (exercises ByteTrack's second stage) and 5 % are dropped (lost / re-found tracks).
Target (issue 2): median <= 1 ms at 20 objects.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from edgetally.structures import Detections
from edgetally.tracking import Tracker


def make_frames(n_objects: int, n_frames: int, seed: int = 0) -> list[Detections]:
    rng = np.random.default_rng(seed)
    start = np.stack([rng.uniform(0, 1800, n_objects), rng.uniform(0, 1000, n_objects)], axis=1)
    vel = rng.uniform(-4, 4, (n_objects, 2))
    size = rng.uniform(30, 80, (n_objects, 2))
    frames = []
    for f in range(n_frames):
        xy = start + vel * f
        xyxy = np.concatenate([xy, xy + size], axis=1) + rng.normal(0, 1.0, (n_objects, 4))
        scores = np.where(rng.random(n_objects) < 0.1, 0.3, 0.9)
        keep = rng.random(n_objects) >= 0.05
        frames.append(
            Detections(
                xyxy[keep].astype(np.float32), scores[keep].astype(np.float32), np.full(int(keep.sum()), 2, np.int64)
            )
        )
    return frames


def bench(n_objects: int, n_frames: int, warmup: int = 50) -> dict[str, float]:
    frames = make_frames(n_objects, n_frames + warmup)
    tracker = Tracker()
    wall, cpu = [], []
    for i, dets in enumerate(frames):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        tracker.update(dets, i / 30.0)
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - t0)
    ms = np.array(wall[warmup:]) / 1e6
    cpu_ms = np.array(cpu[warmup:]) / 1e6
    # Wall time includes preemption on a busy machine; thread CPU time does not: report both.
    return {
        "objects": n_objects,
        "frames": n_frames,
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "cpu_median_ms": float(np.median(cpu_ms)),
        "cpu_p95_ms": float(np.percentile(cpu_ms, 95)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args(argv)
    results = [bench(n, args.frames) for n in (20, 100)]
    if args.json:
        print(json.dumps({"tracker_update": results}))
    else:
        for r in results:
            print(
                f"{r['objects']:>4} objects: median {r['median_ms']:.3f} ms  p95 {r['p95_ms']:.3f} ms  "
                f"mean {r['mean_ms']:.3f} ms | thread CPU median {r['cpu_median_ms']:.3f} ms  "
                f"p95 {r['cpu_p95_ms']:.3f} ms  ({r['frames']} frames)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

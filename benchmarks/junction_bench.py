"""Turning movements on the junction demo scene vs its exact truth, per movement.

    .venv/bin/python -m benchmarks.junction_bench [--seconds 120] [--seeds 3 4 5] [--json out.json]

For each seed: the scene's true movements (edgetally/demo/junction.py), then the runner's approach
line counters + MovementCounter fed by (1) the exact tracks (the movement logic alone), (2) the exact
boxes through the runner's Tracker, (3) noisy detections (5 % box jitter, 10 % missed) and (4) harder
ones (10 % jitter, 20 % missed) through the Tracker. Prints the per-movement table of the first seed
and a summary over all seeds (sum of |error| per movement / true movements).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edgetally.demo.junction import JunctionConfig, simulate_junction
from edgetally.demo.junction_eval import NoiseSpec, compare_movements, count_movements, format_movements

RUNS = (
    ("exact tracks", "ids", None),
    ("exact boxes + tracker", "tracker", None),
    ("noisy 5 %/10 % + tracker", "noisy", (0.05, 0.1)),
    ("noisy 10 %/20 % + tracker", "noisy", (0.10, 0.2)),
)


def run(seconds: float, seeds: list[int]) -> dict[str, object]:
    results: dict[str, list[dict[str, object]]] = {name: [] for name, _, _ in RUNS}
    for seed in seeds:
        scene = simulate_junction(JunctionConfig(seconds=seconds, seed=seed))
        truth = scene.movement_counts()
        for name, mode, noise in RUNS:
            spec = NoiseSpec(jitter=noise[0], drop=noise[1], seed=seed) if noise else None
            t0 = time.perf_counter()
            counted, _ = count_movements(scene, mode, spec)
            result = compare_movements(truth, counted)
            result.update(seed=seed, seconds=round(time.perf_counter() - t0, 2))
            results[name].append(result)
    return {"seconds": seconds, "seeds": seeds, "runs": results}


def summary(data: dict[str, object]) -> str:
    lines = [f"{'input':<28} {'true':>5} {'counted':>8} {'exact mvts':>11} {'|err|/true':>11}"]
    for name, results in data["runs"].items():  # type: ignore[union-attr]
        truth = sum(r["truth_total"] for r in results)
        counted = sum(r["counted_total"] for r in results)
        exact = f"{sum(r['exact_movements'] for r in results)}/{sum(r['movements'] for r in results)}"
        err = sum(sum(abs(row["error"]) for row in r["rows"]) for r in results)
        lines.append(f"{name:<28} {truth:>5} {counted:>8} {exact:>11} {100.0 * err / max(truth, 1):>10.1f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    data = run(args.seconds, args.seeds)
    for name, results in data["runs"].items():  # type: ignore[union-attr]
        print(f"\n{name}, seed {args.seeds[0]}, {args.seconds:g} s scene:\n{format_movements(results[0])}")
    print(f"\nall seeds ({', '.join(map(str, args.seeds))}):\n{summary(data)}")
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

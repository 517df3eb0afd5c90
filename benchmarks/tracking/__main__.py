"""python -m benchmarks.tracking [--json OUT] [--quick] [--trackers ours,bytetrack]
[--ours-param KEY=VALUE ...] [--counter-param KEY=VALUE ...]
[--noise KEY=VALUE ...]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.tracking.adapters import TRACKER_NAMES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tracking", description=__doc__)
    p.add_argument("--json", type=Path, help="also write the full result as JSON here")
    p.add_argument("--quick", action="store_true", help="3 MOT15 sequences and MOT17-09 only")
    p.add_argument("--mot-root", type=Path, help="folder holding MOT15/ and MOT17/ (default ../shared/data/mot)")
    p.add_argument("--trackers", default=",".join(TRACKER_NAMES), help="comma-separated subset")
    p.add_argument("--ours-param", action="append", default=[], help="TrackerConfig override KEY=VALUE")
    p.add_argument("--counter-param", action="append", default=[], help="LineCounter override KEY=VALUE")
    p.add_argument("--noise", action="append", default=[], help="NoiseSpec override KEY=VALUE (MOT17 detections)")
    return p


def main(argv: list[str] | None = None) -> int:
    from benchmarks.tracking.data import MOT_ROOT
    from benchmarks.tracking.overrides import (
        check_overrides,
        counter_defaults,
        dataclass_defaults,
        parse_overrides,
        tracker_defaults,
    )
    from benchmarks.tracking.report import render
    from benchmarks.tracking.runner import BenchConfig, run_benchmark

    args = _parser().parse_args(argv)
    mot_root = args.mot_root or MOT_ROOT
    if not (mot_root / "MOT15").is_dir() or not (mot_root / "MOT17").is_dir():
        print(f"error: MOT data not found under {mot_root} (expected MOT15/ and MOT17/)", file=sys.stderr)
        return 2
    trackers = tuple(t for t in args.trackers.split(",") if t)
    unknown = set(trackers) - set(TRACKER_NAMES)
    if unknown:
        print(f"error: unknown trackers {sorted(unknown)}; expected some of {TRACKER_NAMES}", file=sys.stderr)
        return 2
    from benchmarks.tracking.noise import NoiseSpec

    try:
        noise, ours, counter = (parse_overrides(v) for v in (args.noise, args.ours_param, args.counter_param))
        check_overrides("--noise", noise, dataclass_defaults(NoiseSpec), "NoiseSpec")
        check_overrides("--ours-param", ours, tracker_defaults(noise_prefix=False), "TrackerConfig")
        check_overrides("--counter-param", counter, counter_defaults(), "LineCounter")
        cfg = BenchConfig(
            mot_root=mot_root,
            quick=args.quick,
            trackers=trackers,
            noise=NoiseSpec(**noise),
            ours_overrides=ours,
            counter_overrides=counter,
        )
    except ValueError as exc:  # a malformed KEY=VALUE, an unknown setting or a value of the wrong kind
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_benchmark(cfg)
    print(render(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

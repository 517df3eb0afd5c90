"""python -m benchmarks.frame_rates [--json OUT] [--datasets traffic,traffic-variants,mot17,demo]
                                   [--seeds 11,12,13] [--phases 5] [--jobs N] [--stacks ours,peer]
                                   [--only rates|cost|pipeline|visits]
                                   [--tracker-param KEY=VALUE ...] [--counter-param KEY=VALUE ...]
                                   [--flow-param KEY=VALUE ...] [--traffic-model ARTIFACT]
                                   [--noise KEY=VALUE ...] [--mot17-lines all|h|v]

Counting error at low frame rates (issue 13), our stack next to the peer stack (trackers'
ByteTrack + supervision's LineZone) on the same cached detections, and (MOT17-derived) next to
``ideal``: the line counter fed the true identities, what perfect association would count:

- every k-th frame at 30 / 15 / 8 / 5 / 3 fps (traffic_road.mp4 with its hand count on both of
  its lines; the same video reversed in time, mirrored, and both, pooled: the vehicles drive the
  other way and enter from the other side, so a setting tuned to this one video shows; the
  MOT17-derived counting benchmark; synthetic demo scenes with exact truth);
- every frame with the detector at 15 / 8 / 5 / 3 inferences per second and optical flow in
  between (the videos);
- each over several phases of the frame grid (which frame is first);
- propagation cost at 20 and 100 objects (640x360, one thread);
- ``edge run`` itself on traffic_road.mp4 at each setting: pipeline frames per second, CPU per
  frame and the counts through the product;
- ``edge run`` on two more real clips with hand counts, people walking past a table and bottles
  put on one, at the same settings: lines and zones (entries, exits).

Detections are computed once per video and model and cached (--cache). Needs ../shared/data and
the 'bench' extra (trackers, supervision).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.frame_rates.clips import (
    MOT17_LINES,
    REPO,
    SHARED,
    TRAFFIC_VIDEO,
    demo_clip,
    geometry_words,
    mot17_clips,
    regeometry,
    traffic_artifact,
    traffic_clip,
    traffic_variants,
    with_misses,
)
from benchmarks.frame_rates.plan import (
    DETECT_RATES,
    INPUT_RATES,
    STACKS,
    Params,
    aggregate,
    default_jobs,
    make_tasks,
    run_all,
)
from benchmarks.frame_rates.report import render

DATASETS = ("traffic", "traffic-variants", "mot17", "demo")
ONLY = ("rates", "cost", "pipeline", "visits")
DEFAULT_SEEDS = (11, 12, 13, 14, 15)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.frame_rates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", type=Path, help="also write the full result as JSON here")
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of %(default)s")
    p.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)), help="demo scene seeds")
    p.add_argument("--phases", type=int, default=5, help="phases of the frame grid per setting (default 5)")
    p.add_argument("--jobs", type=int, default=None, help="parallel passes (default: the CPUs, at most 16)")
    p.add_argument("--stacks", default=",".join(STACKS), help="comma-separated subset of %(default)s")
    p.add_argument(
        "--only",
        choices=ONLY,
        help="only the counting tables, the propagation cost, the edge run pipeline runs or the people / bottles visits",
    )
    p.add_argument(
        "--input-rates",
        default=",".join(f"{r:g}" for r in INPUT_RATES),
        help="every-k-th-frame rates (default %(default)s; empty: none)",
    )
    p.add_argument(
        "--detect-rates",
        default=",".join(f"{r:g}" for r in DETECT_RATES),
        help="detector rates with flow, videos only (default %(default)s; empty: none)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=REPO / ".cache" / "frame_rates",
        help="detections, rendered scenes and packaged models (default .cache/frame_rates)",
    )
    p.add_argument(
        "--traffic-model",
        type=Path,
        metavar="ARTIFACT",
        help="artifact directory that detects on traffic_road.mp4 and runs the pipeline rows, e.g. an INT8 "
        "one from `edge convert` (default: the shared YOLOX-nano packaged as FP32)",
    )
    p.add_argument(
        "--noise",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="MOT17-derived detections: NoiseSpec override, e.g. miss_rate=0 (benchmarks/tracking/noise.py)",
    )
    p.add_argument(
        "--mot17-lines",
        choices=MOT17_LINES,
        default="all",
        help="MOT17-derived: only the horizontal (h) or vertical (v) lines (default: all)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="every clip's boxes and lines times this (3: 640x360 footage as if 1920x1080); drops the "
        "videos, so only the input-rate rows run (default 1)",
    )
    p.add_argument(
        "--drop-detections",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="drop this share of every clip's detections at random (seeded): a detector with lower recall (default 0)",
    )
    p.add_argument(
        "--transpose",
        action="store_true",
        help="swap x and y in every clip's boxes and lines: vehicles cross horizontal lines moving up or "
        "down the image (the truth's directions swap with it); drops the videos as --scale does",
    )
    for name in ("tracker", "counter", "flow"):
        p.add_argument(
            f"--{name}-param", action="append", default=[], metavar="KEY=VALUE", help=f"override of our {name} settings"
        )
    return p


def main(argv: list[str] | None = None) -> int:
    from benchmarks.tracking.overrides import parse_overrides

    args = _parser().parse_args(argv)
    names = [d for d in args.datasets.split(",") if d]
    stacks = tuple(s for s in args.stacks.split(",") if s)
    if (
        set(names) - set(DATASETS)
        or set(stacks) - set(STACKS)
        or args.phases < 1
        or not args.scale > 0
        or not 0 <= args.drop_detections < 1
    ):
        print(
            f"error: datasets among {DATASETS}, stacks among {STACKS}, --phases >= 1, --scale > 0, "
            "0 <= --drop-detections < 1",
            file=sys.stderr,
        )
        return 2
    if args.traffic_model is not None and not (args.traffic_model / "manifest.json").is_file():
        print(
            f"error: --traffic-model {args.traffic_model}: not an artifact directory (no manifest.json)",
            file=sys.stderr,
        )
        return 2
    try:
        noise = parse_overrides(args.noise)
        params = Params(*(parse_overrides(getattr(args, f"{n}_param")) for n in ("tracker", "counter", "flow")))
        _check_settings(noise, params)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not SHARED.is_dir():
        print(f"error: {SHARED} not found (real videos, models and MOT data)", file=sys.stderr)
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
        rates = [tuple(float(r) for r in v.split(",") if r) for v in (args.input_rates, args.detect_rates)]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result: dict = {
        "config": {
            "datasets": names,
            "seeds": seeds,
            "phases": args.phases,
            "stacks": list(stacks),
            "params": params.__dict__,
            "traffic_model": str(args.traffic_model or "yolox_nano FP32 (shared)"),
            "mot17_noise": noise,
            "mot17_lines": args.mot17_lines,
            "scale": args.scale,
            "transpose": args.transpose,
            "drop_detections": args.drop_detections,
        }
    }

    def log(msg):
        return print(msg, file=sys.stderr, flush=True)

    if args.only in (None, "rates"):
        datasets = _datasets(names, seeds, args.cache, log, args.traffic_model, noise, args.mot17_lines)
        if args.scale != 1.0 or args.transpose:
            datasets = _regeometry(datasets, args.scale, args.transpose)
        if args.drop_detections:
            share = args.drop_detections
            datasets = {
                f"{label} {share:g} missed": [with_misses(c, share) for c in clips] for label, clips in datasets.items()
            }
        tasks = make_tasks(datasets, stacks, args.phases, *rates)
        log(f"{len(tasks)} passes on {args.jobs or default_jobs()} worker(s)")
        result["rows"] = aggregate(datasets, run_all(datasets, tasks, params, args.jobs or default_jobs(), log))
        result["infer_ms"] = {n: clips[0].infer_ms for n, clips in datasets.items() if clips[0].infer_ms}
    if args.only in (None, "cost"):
        from benchmarks.frame_rates.cost import measure

        result["cost"] = measure(TRAFFIC_VIDEO)
    if args.only in (None, "pipeline"):
        from benchmarks.frame_rates import pipeline

        artifact = args.traffic_model or traffic_artifact(args.cache)
        result["pipeline"] = pipeline.measure(artifact, args.cache, *rates, log=log)
    if args.only in (None, "visits"):
        from benchmarks.frame_rates import visits

        result["visits"] = visits.measure(traffic_artifact(args.cache), args.cache, *rates, log=log)
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(render(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
    return 0


def _check_settings(noise: dict, params: Params) -> None:
    """ValueError naming the option and key when an override is not a setting of what it overrides
    or not a value of its kind (benchmarks/tracking/overrides.py)."""
    from benchmarks.tracking.noise import NoiseSpec
    from benchmarks.tracking.overrides import check_overrides, counter_defaults, dataclass_defaults, tracker_defaults
    from edgetally.motion import FlowConfig

    check_overrides("--noise", noise, dataclass_defaults(NoiseSpec), "NoiseSpec")
    check_overrides("--tracker-param", params.tracker, tracker_defaults(noise_prefix=True), "TrackerConfig")
    check_overrides("--counter-param", params.counter, counter_defaults(), "LineCounter")
    check_overrides("--flow-param", params.flow, dataclass_defaults(FlowConfig), "FlowConfig")


def _regeometry(datasets: dict, scale: float, transpose: bool) -> dict:
    words = geometry_words(scale, transpose)  # the dataset's label says it as each clip's name does
    return {
        " ".join([label, *words]): [regeometry(c, scale, transpose) for c in clips] for label, clips in datasets.items()
    }


def _datasets(
    names: list[str],
    seeds: list[int],
    cache: Path,
    log,
    traffic_model: Path | None,
    noise: dict | None = None,
    mot17_lines: str = "all",
) -> dict:
    out = {}
    if "traffic" in names:
        out["traffic_road"] = [traffic_clip(cache, log, traffic_model)]
    if "traffic-variants" in names:
        out["traffic_road reversed/mirrored x3"] = traffic_variants(cache, log, traffic_model)
    if "mot17" in names:
        label = "MOT17-derived" + ("" if mot17_lines == "all" else f" ({mot17_lines} lines)")
        label += "".join(f" {k}={v}" for k, v in (noise or {}).items())
        out[label] = mot17_clips(noise, mot17_lines)
    if "demo" in names:
        clips = [demo_clip(s, cache, log) for s in seeds]
        out[f"demo scenes x{len(clips)}"] = clips
    return out


if __name__ == "__main__":
    sys.exit(main())

"""python -m benchmarks.tracking.timing [--repeats 5] [--mot-root DIR]

Tracker time per frame, interleaved: every repeat runs each tracker once over every sequence of
every suite (MOT15 ACF + Faster R-CNN, MOT17-derived at 30/15/5 fps), in turn, so a burst of
load on a shared machine hits all trackers alike. Reports the median over repeats of each
tracker's ms/frame and its ratio to the `trackers` package's ByteTrack. The full benchmark's
per-suite timings come from one pass each and move by +-50 % on a busy 2-core box; this is the
figure to compare trackers by.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from benchmarks.tracking.adapters import TRACKER_NAMES, run_tracker
from benchmarks.tracking.data import MOT15_DET_SETS, MOT_ROOT, load_mot15, load_mot17_noisy
from benchmarks.tracking.noise import NoiseSpec
from benchmarks.tracking.runner import FPS_DIVISORS
from edgetally.structures import Detections
from edgetally.tracking.mot_io import detections_by_frame

REFERENCE = "bytetrack"


def load_inputs(mot_root: Path) -> list[tuple[list[Detections], float]]:
    """(per-frame detections, fps) for every sequence of every suite of the full benchmark."""
    suites = [load_mot15(mot_root, det_set) for det_set in MOT15_DET_SETS]
    suites += [load_mot17_noisy(mot_root, NoiseSpec(), div) for div in FPS_DIVISORS]
    return [
        (detections_by_frame(s.dets, s.info.seq_length), s.info.frame_rate) for suite in suites for s in suite.sequences
    ]


def time_trackers(inputs: list[tuple[list[Detections], float]], repeats: int) -> dict[str, float]:
    """Median over repeats of each tracker's ms per frame over all inputs, trackers interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in TRACKER_NAMES}
    for _ in range(repeats):
        for name in TRACKER_NAMES:
            seconds = frames = 0.0
            for frames_in, fps in inputs:
                run = run_tracker(name, frames_in, fps)
                seconds += run.seconds
                frames += run.frames
            samples[name].append(1000.0 * seconds / max(frames, 1))
    return {name: statistics.median(v) for name, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.tracking.timing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--repeats", type=int, default=5, help="interleaved passes (median reported)")
    p.add_argument("--mot-root", type=Path, default=MOT_ROOT, help="folder holding MOT15/ and MOT17/")
    args = p.parse_args(argv)
    if not (args.mot_root / "MOT15").is_dir() or not (args.mot_root / "MOT17").is_dir():
        print(f"error: MOT data not found under {args.mot_root}", file=sys.stderr)
        return 2
    medians = time_trackers(load_inputs(args.mot_root), max(1, args.repeats))
    print("| tracker | ms/frame (median) | vs ByteTrack |\n|---|---|---|")
    for name, ms in medians.items():
        print(f"| {name} | {ms:.3f} | {ms / medians[REFERENCE]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

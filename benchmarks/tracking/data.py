"""Benchmark sequences: MOT15 with its two detection sets, MOT17 GT with derived noisy detections.

A Sequence is self-contained: GT, detections and seqinfo, already subsampled and renumbered
(frames 1..seq_length) so the metrics code and every tracker see exactly the same frames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.tracking.noise import NoiseSpec, evaluated_gt, noisy_detections
from edgetally.tracking.mot_io import FRAME, SCORE, MotTable, SeqInfo, read_mot, read_seqinfo

MOT_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "mot"
MOT15_DET_SETS = ("det", "det_sort_frcnn")
# ACF scores (MOT15 det/) run from about -0.7 to 139; trackers expect [0, 1]. One fixed linear
# map for every tracker keeps the comparison fair and the order of detections unchanged.
ACF_SCORE_SCALE = 100.0


@dataclass(frozen=True)
class Sequence:
    """One sequence as the trackers and the scorer see it (after any subsampling)."""

    name: str
    benchmark: str  # "MOT15" or "MOT17": selects TrackEval's preprocessing
    info: SeqInfo  # frame_rate and seq_length are those after subsampling
    gt: MotTable  # all GT rows (distractors too: TrackEval needs them), frames renumbered
    dets: MotTable  # detections, same frame numbering
    fps_divisor: int = 1


@dataclass(frozen=True)
class Suite:
    """Sequences scored together (one row per tracker in the report)."""

    name: str
    benchmark: str
    sequences: tuple[Sequence, ...]


def subsample(table: MotTable, divisor: int) -> MotTable:
    """Keep frames 1, 1 + K, 1 + 2K, ... and renumber them 1, 2, 3, ..."""
    if divisor == 1:
        return table
    frame0 = table[:, FRAME].astype(np.int64) - 1
    out = table[frame0 % divisor == 0].copy()
    out[:, FRAME] = frame0[frame0 % divisor == 0] // divisor + 1
    return out


def subsample_sequence(seq: Sequence, divisor: int) -> Sequence:
    """The same sequence as seen by a camera running `divisor` times slower."""
    info = dataclasses.replace(
        seq.info,
        frame_rate=seq.info.frame_rate / divisor,
        seq_length=(seq.info.seq_length + divisor - 1) // divisor,
    )
    return Sequence(
        seq.name,
        seq.benchmark,
        info,
        subsample(seq.gt, divisor),
        subsample(seq.dets, divisor),
        seq.fps_divisor * divisor,
    )


def _seq_dirs(root: Path, names: tuple[str, ...] | None) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if (p / "seqinfo.ini").is_file())
    return [p for p in dirs if names is None or p.name in names]


def load_mot15(root: Path, det_set: str, names: tuple[str, ...] | None = None) -> Suite:
    """MOT15 train sequences that have `det_set`/det.txt (ACF public 'det' or 'det_sort_frcnn')."""
    seqs = []
    for path in _seq_dirs(root / "MOT15" / "train", names):
        det_file = path / det_set / "det.txt"
        if not det_file.is_file():
            continue
        dets = read_mot(det_file)
        if det_set == "det":
            dets[:, SCORE] = np.clip(dets[:, SCORE] / ACF_SCORE_SCALE, 0.0, 1.0)
        seqs.append(
            Sequence(path.name, "MOT15", read_seqinfo(path / "seqinfo.ini"), read_mot(path / "gt" / "gt.txt"), dets)
        )
    label = "ACF public" if det_set == "det" else "Faster R-CNN (SORT)"
    return Suite(f"MOT15 {label}", "MOT15", tuple(seqs))


def load_mot17_noisy(root: Path, spec: NoiseSpec, divisor: int = 1, names: tuple[str, ...] | None = None) -> Suite:
    """MOT17 GT with detections derived from it (noise drawn at 30 fps, then subsampled).

    Drawing the noise once at full rate means the 15 and 5 fps runs see a subset of the very
    same detections: only the frame rate differs between them.
    """
    seqs = []
    for path in _seq_dirs(root / "MOT17" / "train", names):
        info = read_seqinfo(path / "seqinfo.ini")
        gt = read_mot(path / "gt" / "gt.txt")
        dets = noisy_detections(evaluated_gt(gt, "MOT17"), info, spec)
        seqs.append(subsample_sequence(Sequence(path.name, "MOT17", info, gt, dets), divisor))
    fps = 30 // divisor if divisor in (1, 2, 3, 6) else f"30/{divisor}"
    return Suite(f"MOT17 GT+noise {fps} fps", "MOT17", tuple(seqs))

"""Detections made from ground truth with controlled, seeded noise.

MOT17 ships ground truth but (here) no detections. We derive detector-like output from it so
trackers and counters are tested on real trajectories with known, tunable detector faults:
misses (more likely for occluded people, as with a real detector), box jitter proportional to
box size, false positives, and a score distribution in which occluded objects score lower
(what ByteTrack-style low-score association exists for).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from edgetally.tracking.mot_io import CLASS, FRAME, ID, SCORE, VIS, H, MotTable, SeqInfo, W, X, Y


@dataclass(frozen=True)
class NoiseSpec:
    """Detector faults. Probabilities per GT box, sizes relative to the box.

    miss_rate: base probability that a visible box is not detected.
    occlusion_miss: extra miss probability at visibility 0 (linear in 1 - visibility).
    jitter: std of box-edge noise, as a fraction of box width (x) / height (y).
    fp_per_frame: mean number of false positives per frame (Poisson).
    tp_score_beta: Beta(a, b) of a fully visible true detection's score.
    occlusion_score_drop: score multiplier at visibility 0 is (1 - this); linear in between.
    fp_score_beta: Beta(a, b) of a false positive's score.
    seed: base seed; each sequence mixes in a hash of its name so sequences differ.
    nms_iou: greedy NMS over each frame's boxes at this IoU, highest score first, after every draw:
      a real detector's decoder never reports two boxes this close (YOLOX: 0.45), while ground
      truth holds one for each person of a group. 1.0 (the default) keeps every box.
    """

    miss_rate: float = 0.10
    occlusion_miss: float = 0.40
    jitter: float = 0.05
    fp_per_frame: float = 1.0
    tp_score_beta: tuple[float, float] = (8.0, 2.0)
    occlusion_score_drop: float = 0.5
    fp_score_beta: tuple[float, float] = (2.0, 5.0)
    seed: int = 2024
    nms_iou: float = 1.0


def evaluated_gt(gt: MotTable, benchmark: str) -> MotTable:
    """The GT boxes a MOTChallenge evaluation scores: considered (flag 1) pedestrians (class 1 on MOT17)."""
    keep = gt[:, SCORE] != 0
    if benchmark != "MOT15":
        keep &= gt[:, CLASS] == 1
    return gt[keep]


def noisy_detections(gt: MotTable, info: SeqInfo, spec: NoiseSpec, keep_ids: bool = False) -> MotTable:
    """Make a det.txt-like table (frame, -1, x, y, w, h, score, -1, -1, -1) from evaluated GT rows.

    Deterministic for a given (gt, info.name, spec). Visibility is read from column 8 when present
    (MOT17); MOT15 has none and is treated as fully visible.

    keep_ids: write each true detection's GT id in the id column (false positives keep -1): the
    same boxes with perfect association, for the counting benchmark's no-tracker reference.
    """
    rng = np.random.default_rng([spec.seed, zlib.crc32(info.name.encode())])
    vis = np.clip(np.where(gt[:, VIS] >= 0, gt[:, VIS], 1.0), 0.0, 1.0)
    p_miss = np.clip(spec.miss_rate + spec.occlusion_miss * (1.0 - vis), 0.0, 1.0)
    kept = rng.random(len(gt)) >= p_miss
    tp = _jittered(gt[kept], rng, spec.jitter)
    if keep_ids:
        tp[:, ID] = gt[kept, ID]
    tp_scores = rng.beta(*spec.tp_score_beta, size=len(tp)) * (1.0 - spec.occlusion_score_drop * (1.0 - vis[kept]))
    tp[:, SCORE] = tp_scores
    fp = _false_positives(gt, info, spec, rng)
    table = np.concatenate([tp, fp])
    table = table[np.argsort(table[:, FRAME], kind="stable")]
    return _suppressed(table, spec.nms_iou) if spec.nms_iou < 1.0 else table


def _suppressed(table: MotTable, iou: float) -> MotTable:
    """``table`` (sorted by frame) without the boxes greedy per-frame NMS at ``iou`` removes."""
    from edgetally.postprocess.nms import nms
    from edgetally.tracking.mot_io import mot_to_xyxy

    keep = np.zeros(len(table), bool)
    starts = np.flatnonzero(np.r_[True, table[1:, FRAME] != table[:-1, FRAME], True])
    for a, b in zip(starts[:-1], starts[1:]):
        keep[a + nms(mot_to_xyxy(table[a:b]), table[a:b, SCORE], iou)] = True
    return table[keep]


def _jittered(rows: MotTable, rng: np.random.Generator, jitter: float) -> MotTable:
    """Move each box edge by N(0, jitter * size); keep boxes at least 2 px wide and tall."""
    out = np.full((len(rows), rows.shape[1]), -1.0)
    out[:, FRAME] = rows[:, FRAME]
    w, h = rows[:, W], rows[:, H]
    x1 = rows[:, X] + rng.normal(0.0, jitter, len(rows)) * w
    x2 = rows[:, X] + w + rng.normal(0.0, jitter, len(rows)) * w
    y1 = rows[:, Y] + rng.normal(0.0, jitter, len(rows)) * h
    y2 = rows[:, Y] + h + rng.normal(0.0, jitter, len(rows)) * h
    out[:, X], out[:, Y] = x1, y1
    out[:, W], out[:, H] = np.maximum(x2 - x1, 2.0), np.maximum(y2 - y1, 2.0)
    return out


def _false_positives(gt: MotTable, info: SeqInfo, spec: NoiseSpec, rng: np.random.Generator) -> MotTable:
    """Poisson-many boxes on every frame, sized like real GT boxes, placed uniformly in the image."""
    frames = np.arange(1, info.seq_length + 1, dtype=np.float64)
    width, height = info.width, info.height
    if len(gt) == 0 or spec.fp_per_frame <= 0:
        return np.full((0, gt.shape[1]), -1.0)
    counts = rng.poisson(spec.fp_per_frame, len(frames))
    n = int(counts.sum())
    out = np.full((n, gt.shape[1]), -1.0)
    out[:, FRAME] = np.repeat(frames, counts)
    sizes = gt[rng.integers(0, len(gt), n)][:, [W, H]]
    out[:, W], out[:, H] = sizes[:, 0], sizes[:, 1]
    out[:, X] = rng.random(n) * np.maximum(width - sizes[:, 0], 1.0)
    out[:, Y] = rng.random(n) * np.maximum(height - sizes[:, 1], 1.0)
    out[:, SCORE] = rng.beta(*spec.fp_score_beta, size=n)
    return out

"""Runs the whole benchmark and returns one JSON-able result (report.py renders it)."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.tracking import counting, metrics
from benchmarks.tracking.adapters import OURS, TRACKER_NAMES, run_tracker
from benchmarks.tracking.data import (
    MOT15_DET_SETS,
    MOT_ROOT,
    Sequence,
    Suite,
    load_mot15,
    load_mot17_noisy,
    subsample,
)
from benchmarks.tracking.noise import NoiseSpec, evaluated_gt, noisy_detections
from edgetally.cli.track import TrackRun
from edgetally.tracking.mot_io import ID, SCORE, MotTable, detections_by_frame, read_mot

FPS_DIVISORS = (1, 2, 6)  # 30, 15 and 5 fps from MOT17's 30 fps
QUICK_MOT15 = ("TUD-Campus", "TUD-Stadtmitte", "KITTI-13")
QUICK_MOT17 = ("MOT17-09-FRCNN",)
PERFECT_TRACKS = "gt tracks"  # counting reference row: the counter on the ground truth's own ids
TRUE_IDS = "true ids"  # counting reference row: the noisy detections with their true ids, no tracker
# SORT paper settings (README.sort.md): max_age 1, min_hits 3, IoU 0.3.
SORT_PAPER = {"lost_track_buffer": 1, "minimum_consecutive_frames": 3, "minimum_iou_threshold": 0.3}


@dataclass(frozen=True)
class BenchConfig:
    mot_root: Path = MOT_ROOT
    quick: bool = False
    trackers: tuple[str, ...] = TRACKER_NAMES
    noise: NoiseSpec = NoiseSpec()
    ours_overrides: dict[str, Any] = field(default_factory=dict)
    counter_overrides: dict[str, Any] = field(default_factory=dict)


def run_benchmark(cfg: BenchConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    mot15_names = QUICK_MOT15 if cfg.quick else None
    mot17_names = QUICK_MOT17 if cfg.quick else None
    suites = [load_mot15(cfg.mot_root, det_set, mot15_names) for det_set in MOT15_DET_SETS]
    mot17 = [load_mot17_noisy(cfg.mot_root, cfg.noise, div, mot17_names) for div in FPS_DIVISORS]
    suites += mot17
    accuracy, per_seq, outputs = [], {}, {}
    for suite in suites:
        for name in cfg.trackers:
            row, seq_scores, runs = run_suite(suite, name, cfg.ours_overrides)
            accuracy.append(row)
            per_seq.setdefault(suite.name, {})[name] = seq_scores
            outputs[(suite.name, name)] = runs
    return {
        "config": _config_json(cfg),
        "accuracy": accuracy,
        "per_sequence": per_seq,
        "timing": _timing(accuracy),
        "sort_published": sort_published_check(cfg, suites[1], outputs),
        "mpntrack_crosscheck": mpntrack_crosscheck(cfg.mot_root, mot17[0]),
        "counting": counting_benchmark(mot17, outputs, cfg),
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }


def run_suite(suite: Suite, name: str, overrides: dict[str, Any]) -> tuple[dict, dict, dict[str, TrackRun]]:
    items, runs, seconds, frames = [], {}, 0.0, 0
    for seq in suite.sequences:
        run = runs[seq.name] = run_tracker(
            name,
            detections_by_frame(seq.dets, seq.info.seq_length),
            seq.info.frame_rate,
            overrides if name == OURS else None,
        )
        items.append((seq, run.table))
        seconds += run.seconds
        frames += run.frames
    combined, per_seq = metrics.score(items)
    row = {
        "suite": suite.name,
        "tracker": name,
        **combined.as_dict(),
        "frames": frames,
        "ms_per_frame": round(1000.0 * seconds / max(frames, 1), 4),
    }
    return row, {k: v.as_dict() for k, v in per_seq.items()}, runs


def _timing(accuracy: list[dict]) -> dict[str, float]:
    """Tracker time per frame over every frame of every suite."""
    out = {}
    for name in dict.fromkeys(r["tracker"] for r in accuracy):
        rows = [r for r in accuracy if r["tracker"] == name]
        frames = sum(r["frames"] for r in rows)
        out[name] = round(sum(r["ms_per_frame"] * r["frames"] for r in rows) / max(frames, 1), 4)
    return out


def parse_sort_table(readme: Path) -> dict[str, dict[str, float]]:
    """SORT's published per-sequence devkit table -> {sequence: {FP, FN, IDs, MOTA, Rcll}}."""
    out = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != 7 or not re.match(r"^[A-Za-z][\w-]+$", cells[0]) or cells[0] == "Sequence":
            continue
        fp, fn, ids, _fm = (float(v) for v in cells[5].split())
        mota = float(cells[6].split()[0])
        out[cells[0]] = {"FP": fp, "FN": fn, "IDs": ids, "MOTA": mota, "Rcll": float(cells[1])}
    return out


def sort_published_check(cfg: BenchConfig, frcnn: Suite, outputs: dict) -> dict[str, Any]:
    """MOTA on the MOT15 sequences both SORT's table and our data have, with SORT's detections.

    Also re-scores the `trackers` package's SORT run with the paper's settings: if TrackEval's
    MOTA matches the published devkit MOTA, the comparison is like for like.
    """
    published = parse_sort_table(cfg.mot_root / "README.sort.md")
    seqs = [s for s in frcnn.sequences if s.name in published]
    if not seqs:
        return {"sequences": [], "note": "no MOT15 sequence of SORT's table is present"}
    gt_dets = {s.name: int((s.gt[:, SCORE] != 0).sum()) for s in seqs}
    errors = sum(published[s.name][k] for s in seqs for k in ("FP", "FN", "IDs"))
    result: dict[str, Any] = {
        "sequences": [s.name for s in seqs],
        "published_mota": {s.name: published[s.name]["MOTA"] / 100 for s in seqs},
        "published_combined_mota": round(1.0 - errors / sum(gt_dets.values()), 5),
        "measured": {},
    }
    for name in cfg.trackers:
        combined, per = metrics.score([(s, outputs[(frcnn.name, name)][s.name].table) for s in seqs])
        result["measured"][name] = {"combined": combined.mota, **{k: v.mota for k, v in per.items()}}
    result["measured"]["sort (paper settings)"] = _sort_paper_rescore(seqs)
    return result


def _sort_paper_rescore(seqs: list[Sequence]) -> dict[str, float]:
    import trackers

    from benchmarks.tracking.adapters import _run_peer

    items = [
        (
            s,
            _run_peer(
                trackers.SORTTracker(frame_rate=s.info.frame_rate, **SORT_PAPER),
                detections_by_frame(s.dets, s.info.seq_length),
            ).table,
        )
        for s in seqs
    ]
    combined, per = metrics.score(items)
    return {"combined": combined.mota, **{k: v.mota for k, v in per.items()}}


def mpntrack_crosscheck(mot_root: Path, mot17: Suite) -> dict[str, Any]:
    """Score the published MPNTrack output with TrackEval (our path) and with the `trackers`
    package's independent evaluator; the two should agree."""
    ref = mot_root / "MOT17" / "reference_tracker_MPNTrack"
    seqs = [s for s in mot17.sequences if (ref / f"{s.name}.txt").is_file()]
    if not seqs:
        return {}
    combined, per = metrics.score([(s, read_mot(ref / f"{s.name}.txt")) for s in seqs])
    out: dict[str, Any] = {"trackeval": {"combined": combined.as_dict(), **{k: v.as_dict() for k, v in per.items()}}}
    out["trackers_eval"] = _trackers_eval(mot_root, ref, seqs)
    return out


def _trackers_eval(mot_root: Path, ref: Path, seqs: list[Sequence]) -> dict[str, dict[str, float]]:
    from trackers.eval import evaluate_mot_sequence

    out = {}
    for s in seqs:
        res = evaluate_mot_sequence(
            mot_root / "MOT17" / "train" / s.name / "gt" / "gt.txt",
            ref / f"{s.name}.txt",
            metrics=["CLEAR", "HOTA", "Identity"],
        )
        out[s.name] = {"hota": res.HOTA.HOTA, "mota": res.CLEAR.MOTA, "idf1": res.Identity.IDF1, "idsw": res.CLEAR.IDSW}
    return out


def counting_benchmark(mot17: list[Suite], outputs: dict, cfg: BenchConfig) -> dict[str, Any]:
    """Per (sequence, line, direction): true crossings (30 fps GT) and each tracker's count per fps.

    The PERFECT_TRACKS row feeds the counter the ground-truth tracks themselves (subsampled like
    the detections): the error the counter's own rule and the frame rate cause, with no tracker.
    The TRUE_IDS row feeds it the very detections the trackers got, each true one with its GT id
    and the false positives left out: perfect association of noisy boxes, no smoothing. Between
    the two rows is what the detector's misses and jitter cost; above TRUE_IDS, association."""
    full = {s.name: s for s in mot17[0].sequences}
    lines = {n: counting.place_lines(evaluated_gt(s.gt, "MOT17"), s.info) for n, s in full.items()}
    truth = {
        n: {
            ln.name: counting.true_crossings(evaluated_gt(full[n].gt, "MOT17"), ln, full[n].info.frame_rate)
            for ln in lines[n]
        }
        for n in full
    }
    per_line, summary = [], []
    for suite, div in zip(mot17, FPS_DIVISORS):
        fps = round(30 / div)
        for name in (*cfg.trackers, PERFECT_TRACKS, TRUE_IDS):
            rows = []
            for seq in suite.sequences:
                if name == PERFECT_TRACKS:
                    tracks = evaluated_gt(seq.gt, "MOT17")
                elif name == TRUE_IDS:
                    tracks = _true_id_detections(full[seq.name], cfg.noise, div)
                else:
                    tracks = outputs[(suite.name, name)][seq.name].table
                first = (outputs[(suite.name, name)][seq.name].first_boxes or None) if name in cfg.trackers else None
                got = counting.counted_crossings(tracks, seq.info, lines[seq.name], cfg.counter_overrides, first)
                rows += [
                    {
                        "sequence": seq.name,
                        "line": ln.name,
                        "direction": d,
                        "fps": fps,
                        "tracker": name,
                        "true": truth[seq.name][ln.name][d],
                        "counted": got[ln.name][d],
                    }
                    for ln in lines[seq.name]
                    for d in counting.DIRECTIONS
                ]
            summary.append(
                {
                    "fps": fps,
                    "tracker": name,
                    **counting.count_error(rows),
                    **{
                        f"{k}_abs_error_rate": counting.count_error([r for r in rows if r["line"][0] == k])[
                            "abs_error_rate"
                        ]
                        for k in "hv"
                    },
                }
            )
            per_line += rows
    line_defs = {n: [dataclasses.asdict(ln) for ln in lns] for n, lns in lines.items()}
    return {"summary": summary, "per_line": per_line, "lines": line_defs}


def _true_id_detections(full_rate: Sequence, noise: NoiseSpec, divisor: int) -> MotTable:
    """The noisy detections of `full_rate` (made exactly as load_mot17_noisy makes them, then
    subsampled) with their GT ids; false positives dropped."""
    dets = noisy_detections(evaluated_gt(full_rate.gt, "MOT17"), full_rate.info, noise, keep_ids=True)
    dets = subsample(dets, divisor)
    return dets[dets[:, ID] >= 0]


def _config_json(cfg: BenchConfig) -> dict[str, Any]:
    return {
        "quick": cfg.quick,
        "trackers": list(cfg.trackers),
        "noise": dataclasses.asdict(cfg.noise),
        "ours_overrides": cfg.ours_overrides,
        "counter_overrides": cfg.counter_overrides,
        "truth_band_frac": counting.TRUTH_BAND_FRAC,
        "truth_settle_s": counting.TRUTH_SETTLE_S,
    }

"""`edge track`: run the runner's tracker on MOTChallenge detections, write MOTChallenge tracks.

Same tracker code and defaults as `edge run`, so anyone can score our tracking on sequences of
their own with their own evaluation kit (TrackEval, motmetrics).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import click
import numpy as np

from edgetally.errors import EdgeError
from edgetally.structures import Detections, Tracks
from edgetally.tracking.mot_io import (
    MOT_COLUMNS,
    MotTable,
    detections_by_frame,
    read_mot,
    read_seqinfo,
    tracks_to_mot,
    write_mot,
)


class FrameTracker(Protocol):
    def update(self, detections: Detections, timestamp: float) -> Tracks: ...


@dataclass(frozen=True)
class TrackRun:
    """What one pass of a tracker over a sequence produced."""

    table: MotTable  # (N, 10) MOT rows, original 1-based frame numbers
    frames: int  # frames fed to the tracker
    seconds: float  # time spent inside tracker.update, summed
    # track id -> xyxy of the detection that started it, where the tracker reports it
    # (Tracks.first_xyxy): what a line counter fed this table needs to know a new track's side
    first_boxes: dict[int, np.ndarray] = field(default_factory=dict)


def track_sequence(
    tracker: FrameTracker, frames: list[Detections], frame_rate: float, fps_divisor: int = 1
) -> TrackRun:
    """Feed every fps_divisor-th frame (frame 1 first) with timestamp (frame - 1) / frame_rate.

    Timestamps come from the sequence's timeline, not the wall clock, so a subsampled run sees
    the real time gaps: that is what a tracker with time-based buffers needs at low fps.
    Only ``update`` is timed: reading and writing files is not the tracker's cost.
    """
    parts: list[MotTable] = []
    first_boxes: dict[int, np.ndarray] = {}
    spent = 0.0
    used = 0
    for index in range(0, len(frames), fps_divisor):
        t0 = time.perf_counter()
        tracks = tracker.update(frames[index], index / frame_rate)
        spent += time.perf_counter() - t0
        used += 1
        if len(tracks):
            parts.append(tracks_to_mot(index + 1, tracks))
        if tracks.first_xyxy is not None:
            for tid, box in zip(tracks.ids.tolist(), tracks.first_xyxy):
                first_boxes.setdefault(tid, box)
    table = np.concatenate(parts) if parts else np.full((0, MOT_COLUMNS), -1.0)
    return TrackRun(table=table, frames=used, seconds=spent, first_boxes=first_boxes)


def _default_tracker() -> FrameTracker:
    # Imported here so `edge --help` does not pay for importing the tracker.
    from edgetally.tracking import Tracker

    return Tracker(None)


@click.command("track")
@click.option(
    "--mot-dets",
    "mot_dets",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="MOTChallenge det.txt (frame,-1,x,y,w,h,score,...).",
)
@click.option(
    "--seqinfo",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The sequence's seqinfo.ini (frameRate, seqLength).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the MOTChallenge tracks file.",
)
@click.option("--min-score", type=float, default=None, help="Drop detections scoring below this first.")
@click.option(
    "--fps-divisor",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Track every K-th frame only (simulates a slower camera); frame numbers are kept.",
)
def track_command(mot_dets: Path, seqinfo: Path, out: Path, min_score: float | None, fps_divisor: int) -> None:
    """Track MOTChallenge detections with the runner's tracker and its default settings."""
    try:
        info = read_seqinfo(seqinfo)
        frames = detections_by_frame(read_mot(mot_dets), info.seq_length, min_score)
        run = track_sequence(_default_tracker(), frames, info.frame_rate, fps_divisor)
        write_mot(out, run.table)
    except EdgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    ids = len(np.unique(run.table[:, 1])) if len(run.table) else 0
    per_frame_ms = 1000.0 * run.seconds / max(run.frames, 1)
    click.echo(f"{out}: {len(run.table)} boxes, {ids} tracks, {run.frames} frames, tracker {per_frame_ms:.3f} ms/frame")

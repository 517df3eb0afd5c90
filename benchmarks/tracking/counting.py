"""Counting benchmark: virtual lines across MOT17 trajectories, true crossings vs counted ones.

Truth comes from the ground truth at full frame rate, with the counter's direction rule:
s = (p2 - p1) x (anchor - p1); a change of side from negative to positive is ``in``, the reverse
``out``. A GT anchor closer to the line than TRUTH_BAND_FRAC of its box height (at least
TRUTH_BAND_MIN_PX) is "on the line" and decides nothing: a person walking along the line, or
standing on it, wobbles across it in the annotations by more than a few pixels without anyone
calling that a crossing. The band scales with the box so near and far people are judged alike.
The lines run well past the image on both ends, so every side change passes the counting
segment (GT boxes of people at the image border extend outside it).

One crossing definition, shared with LineCounter's defaults (edgetally/counting/line.py): a
trajectory has no side until it is first clear of the band; a crossing = clearly on one side,
then clearly on the other for at least TRUTH_SETTLE_S seconds without being back on the first
side's sign in between, or the trajectory ends on the far side (the person left the view or
the annotation ends after passing the line). Under 0.5 s over the line and back is a lean or a
step, not a crossing. The definition is fixed here, independent of the counter's settings, so
tuning the counter can never make the task easier; it is stricter than the previous truth
(0.1 x h, no settle, no end rule: 184 crossings) and finds 194 (+12 trajectories that end past
a line, -2 excursions under 0.5 s). The counter with its defaults, fed the GT tracks, finds
exactly these crossings (tests/test_tracking_benchmark.py). MOT17 GT boxes go on through
occlusion (visibility 0), so a person crossing while hidden is a true crossing.

Counted crossings are what edgetally.counting.LineCounter reports when fed a tracker's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetally.counting.geometry import anchor_points, signed_distance
from edgetally.structures import Tracks
from edgetally.tracking.mot_io import FRAME, ID, SCORE, H, MotTable, SeqInfo, mot_to_xyxy

TRUTH_BAND_FRAC = 0.1
TRUTH_BAND_MIN_PX = 4.0
TRUTH_SETTLE_S = 0.5
LINE_QUANTILES = (1 / 3, 2 / 3)
DIRECTIONS = ("in", "out")


@dataclass(frozen=True)
class CountLine:
    name: str
    p1: tuple[float, float]
    p2: tuple[float, float]


def place_lines(gt: MotTable, info: SeqInfo) -> tuple[CountLine, ...]:
    """Two horizontal and two vertical lines at the 1/3 and 2/3 quantiles of the GT anchors,
    so each cuts through where people actually walk. Horizontal: ``in`` = moving down the
    image; vertical: ``in`` = moving left."""
    pts = anchor_points(mot_to_xyxy(gt), "bottom_center")
    w, h = float(info.width), float(info.height)
    lines = []
    for q in LINE_QUANTILES:
        y = float(np.quantile(pts[:, 1], q))
        lines.append(CountLine(f"h{round(100 * q)}", (-0.5 * w, y), (1.5 * w, y)))
    for q in LINE_QUANTILES:
        x = float(np.quantile(pts[:, 0], q))
        lines.append(CountLine(f"v{round(100 * q)}", (x, -0.5 * h), (x, 1.5 * h)))
    return tuple(lines)


def true_crossings(
    gt: MotTable,
    line: CountLine,
    frame_rate: float,
    band_frac: float = TRUTH_BAND_FRAC,
    settle_s: float = TRUTH_SETTLE_S,
) -> dict[str, int]:
    """Crossings of `line` by evaluated GT trajectories (see module docstring), per direction."""
    order = np.lexsort((gt[:, FRAME], gt[:, ID]))
    rows = gt[order]
    s = signed_distance(anchor_points(mot_to_xyxy(rows), "bottom_center"), np.array(line.p1), np.array(line.p2))
    clear = (np.abs(s) > np.maximum(band_frac * rows[:, H], TRUTH_BAND_MIN_PX)).tolist()
    sign = np.sign(s).astype(int).tolist()
    times = ((rows[:, FRAME] - 1) / frame_rate).tolist()
    starts = np.flatnonzero(np.r_[True, rows[1:, ID] != rows[:-1, ID]]).tolist()
    out = dict.fromkeys(DIRECTIONS, 0)
    for a, b in zip(starts, [*starts[1:], len(rows)]):
        for side in _track_crossings(sign[a:b], clear[a:b], times[a:b], settle_s):
            out["in" if side > 0 else "out"] += 1
    return out


def _track_crossings(sign: list[int], clear: list[bool], times: list[float], settle_s: float) -> list[int]:
    """The crossing rule on one trajectory: the sides (+1 = in) of its crossings, in order."""
    found: list[int] = []
    armed = side = 0
    pending: float | None = None
    for sg, cl, t in zip(sign, clear, times):
        side = sg or side  # exactly on the line: keep the previous side
        if armed == 0:  # no side until first clear of the band
            armed = side if cl else 0
        elif side == armed:  # back on (or never left) its side: an excursion cancels
            pending = None
        elif cl:
            pending = t if pending is None else pending
            if t - pending >= settle_s - 1e-6:  # float timestamps: 0.7 - 0.2 is 0.5 s
                found.append(side)
                armed, pending = side, None
    if armed != 0 and side != armed:  # the trajectory ends past the line: it crossed
        found.append(side)
    return found


def counted_crossings(
    tracks: MotTable,
    info: SeqInfo,
    lines: tuple[CountLine, ...],
    counter_overrides: dict | None = None,
    first_boxes: dict[int, np.ndarray] | None = None,
) -> dict[str, dict[str, int]]:
    """Feed tracker output (frames 1..seq_length at info.frame_rate) to one LineCounter per line
    (its defaults unless counter_overrides names LineCounter keyword arguments). first_boxes:
    track id -> the box of the detection that started it, passed on as Tracks.first_xyxy where
    the tracker reports it (ours does, as in the runner; MOT tables cannot carry it)."""
    from edgetally.counting.line import LineCounter

    counters = [LineCounter(ln.name, ln.p1, ln.p2, ["person"], **(counter_overrides or {})) for ln in lines]
    totals = {ln.name: dict.fromkeys(DIRECTIONS, 0) for ln in lines}
    rows = tracks[np.argsort(tracks[:, FRAME], kind="stable")]
    bounds = np.searchsorted(rows[:, FRAME], np.arange(1, info.seq_length + 2))
    xyxy = mot_to_xyxy(rows)
    for i in range(info.seq_length):
        lo, hi = bounds[i], bounds[i + 1]
        ids = rows[lo:hi, ID].astype(np.int64)
        # a track without a known first box: its first reported box stands in (the counter's usual rule)
        first = None if first_boxes is None else [first_boxes.get(t, b) for t, b in zip(ids.tolist(), xyxy[lo:hi])]
        frame_tracks = Tracks(ids, xyxy[lo:hi], rows[lo:hi, SCORE], np.zeros(hi - lo, np.int64), first)
        for counter in counters:
            for event in counter.update(frame_tracks, i + 1, i / info.frame_rate):
                totals[counter.name][event.direction] += 1
    for counter in counters:
        for event in counter.flush():
            totals[counter.name][event.direction] += 1
    return totals


def count_error(rows: list[dict]) -> dict[str, float | int]:
    """Summary over per-(sequence, line, direction) rows with 'true' and 'counted'.

    abs_error_rate = sum |counted - true| / sum true: errors on one line never cancel another's.
    net_error_rate = (sum counted - sum true) / sum true: what a dashboard total would be off by.
    """
    true = sum(r["true"] for r in rows)
    counted = sum(r["counted"] for r in rows)
    abs_err = sum(abs(r["counted"] - r["true"]) for r in rows)
    return {
        "true": true,
        "counted": counted,
        "abs_error_rate": abs_err / true if true else 0.0,
        "net_error_rate": (counted - true) / true if true else 0.0,
    }

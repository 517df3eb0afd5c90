"""MOTChallenge text formats: seqinfo.ini, det.txt / gt.txt tables, and track output. numpy only.

A MOT row is ``frame, id, x, y, w, h, score, class, visibility, z`` with 1-based frames and
top-left/width/height boxes. Detection files carry id -1; ground truth uses ``score`` as a
"consider this box" flag (0 = ignore). Files in the wild have 6 to 10 columns, separated by
commas or whitespace; every table here is padded to 10 columns with -1 so callers index by
column number without caring which variant they were given.
"""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgetally.errors import ConfigError
from edgetally.structures import Detections, Tracks

MOT_COLUMNS = 10
# Column indices of a padded MOT table.
FRAME, ID, X, Y, W, H, SCORE, CLASS, VIS = range(9)

MotTable = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SeqInfo:
    """The [Sequence] section of a MOTChallenge seqinfo.ini."""

    name: str
    frame_rate: float
    seq_length: int
    width: int
    height: int


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Parse seqinfo.ini; a missing key or a bad number is a ConfigError naming file and key."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(Path(path).read_text(encoding="utf-8"))
        section = parser["Sequence"]
    except (OSError, configparser.Error, KeyError) as exc:
        raise ConfigError(f"{path}: not a MOTChallenge seqinfo.ini ({exc})") from exc
    try:
        return SeqInfo(
            name=section.get("name", Path(path).parent.name),
            frame_rate=float(section["frameRate"]),
            seq_length=int(section["seqLength"]),
            width=int(section.get("imWidth", "0")),
            height=int(section.get("imHeight", "0")),
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: [Sequence] {exc}: expected frameRate and seqLength numbers") from exc


def parse_mot(text: str, source: str = "<text>") -> MotTable:
    """Parse MOT rows into an (N, 10) float64 table, padding missing columns with -1."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return np.full((0, MOT_COLUMNS), -1.0)
    delimiter = "," if "," in lines[0] else None
    try:
        table = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=delimiter, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise ConfigError(f"{source}: not a MOTChallenge table ({exc})") from exc
    if table.shape[1] < 6:
        raise ConfigError(f"{source}: expected at least 6 columns (frame,id,x,y,w,h), got {table.shape[1]}")
    out = np.full((table.shape[0], MOT_COLUMNS), -1.0)
    cols = min(table.shape[1], MOT_COLUMNS)
    out[:, :cols] = table[:, :cols]
    if table.shape[1] == 6:  # no score column: treat every box as certain
        out[:, SCORE] = 1.0
    return out


def read_mot(path: str | Path) -> MotTable:
    """Read a det.txt / gt.txt / tracks file into an (N, 10) table (see parse_mot)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    return parse_mot(text, str(path))


def mot_to_xyxy(table: MotTable) -> npt.NDArray[np.float32]:
    """(N, 10) MOT rows -> (N, 4) float32 x1, y1, x2, y2."""
    x, y, w, h = table[:, X], table[:, Y], table[:, W], table[:, H]
    return np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)


def detections_by_frame(
    table: MotTable, seq_length: int, min_score: float | None = None, class_id: int = 0
) -> list[Detections]:
    """Split detection rows into one Detections per frame; element i holds frame i + 1.

    Every frame 1..seq_length gets an entry (empty where the file has none) because a tracker
    must see empty frames too. Rows outside 1..seq_length are dropped. MOT det files carry no
    usable class, so every box gets ``class_id``.
    """
    keep = (table[:, FRAME] >= 1) & (table[:, FRAME] <= seq_length)
    if min_score is not None:
        keep &= table[:, SCORE] >= min_score
    rows = table[keep]
    rows = rows[np.argsort(rows[:, FRAME], kind="stable")]
    frames = rows[:, FRAME].astype(np.int64)
    bounds = np.searchsorted(frames, np.arange(1, seq_length + 2))
    xyxy, scores = mot_to_xyxy(rows), rows[:, SCORE].astype(np.float32)
    out = []
    for i in range(seq_length):
        lo, hi = bounds[i], bounds[i + 1]
        out.append(Detections(xyxy[lo:hi], scores[lo:hi], np.full(hi - lo, class_id, np.int64)))
    return out


def tracks_to_mot(frame: int, tracks: Tracks) -> MotTable:
    """One frame's Tracks -> (N, 10) MOT rows (score = the matched detection's score)."""
    n = len(tracks)
    out = np.full((n, MOT_COLUMNS), -1.0)
    xyxy = tracks.xyxy.astype(np.float64)
    out[:, FRAME] = frame
    out[:, ID] = tracks.ids
    out[:, X], out[:, Y] = xyxy[:, 0], xyxy[:, 1]
    out[:, W], out[:, H] = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    out[:, SCORE] = tracks.scores
    return out


def format_mot(table: MotTable) -> str:
    """(N, 10) rows -> MOTChallenge text, frame then id order (what evaluation kits expect)."""
    if table.shape[0] == 0:
        return ""
    order = np.lexsort((table[:, ID], table[:, FRAME]))
    buf = io.StringIO()
    fmt = "%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,%d,%d,%d"
    np.savetxt(buf, table[order], fmt=fmt)
    return buf.getvalue()


def write_mot(path: str | Path, table: MotTable) -> None:
    """Write rows as a MOTChallenge file, creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_mot(table), encoding="utf-8")

"""HOTA / CLEAR (MOTA) / Identity (IDF1) scoring with TrackEval, the MOTChallenge reference code.

We drive TrackEval's own MotChallenge2DBox dataset class (its file reader and its MOT17
distractor preprocessing) on files written to a temporary folder, instead of re-implementing
any of it: the numbers are then TrackEval's numbers by construction.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.tracking.data import Sequence
from edgetally.tracking.mot_io import MotTable, write_mot

_TRACKER = "tracker"


@dataclass(frozen=True)
class Scores:
    """Summary metrics: fractions in [0, 1] (HOTA, DetA, AssA are means over TrackEval's 19 IoU
    thresholds; MOTA, IDF1 at IoU 0.5) and counts."""

    hota: float
    deta: float
    assa: float
    mota: float
    motp: float
    idf1: float
    recall: float
    precision: float
    idsw: int
    fp: int
    fn: int
    frag: int
    mostly_tracked: int
    mostly_lost: int

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def score(items: list[tuple[Sequence, MotTable]]) -> tuple[Scores, dict[str, Scores]]:
    """Score tracker output per sequence and combined (TrackEval's combine = over all frames).

    items: (sequence, tracker rows in that sequence's frame numbering). All sequences must share
    one benchmark (MOT15 has no classes and no distractor preprocessing).
    """
    import trackeval

    benchmarks = {seq.benchmark for seq, _ in items}
    if len(benchmarks) != 1:
        raise ValueError(f"score(): expected one benchmark, got {sorted(benchmarks)}")
    metrics = [
        trackeval.metrics.HOTA({"PRINT_CONFIG": False}),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    with tempfile.TemporaryDirectory(prefix="trackeval-") as tmp:
        dataset = _dataset(Path(tmp), items, benchmarks.pop())
        per_seq: dict[str, dict[str, dict]] = {}
        for seq, _ in items:
            with contextlib.redirect_stdout(io.StringIO()):
                raw = dataset.get_raw_seq_data(_TRACKER, seq.name)
                data = dataset.get_preprocessed_seq_data(raw, "pedestrian")
                per_seq[seq.name] = {m.get_name(): m.eval_sequence(data) for m in metrics}
    combined = {m.get_name(): m.combine_sequences({s: r[m.get_name()] for s, r in per_seq.items()}) for m in metrics}
    return _summary(combined), {name: _summary(res) for name, res in per_seq.items()}


def _dataset(tmp: Path, items: list[tuple[Sequence, MotTable]], benchmark: str):  # -> MotChallenge2DBox
    import trackeval

    for seq, rows in items:
        write_mot(tmp / "gt" / seq.name / "gt" / "gt.txt", seq.gt)
        write_mot(tmp / "trackers" / _TRACKER / "data" / f"{seq.name}.txt", rows)
    config = {
        "GT_FOLDER": str(tmp / "gt"),
        "TRACKERS_FOLDER": str(tmp / "trackers"),
        "TRACKERS_TO_EVAL": [_TRACKER],
        "BENCHMARK": benchmark,
        "SKIP_SPLIT_FOL": True,
        "SEQ_INFO": {seq.name: seq.info.seq_length for seq, _ in items},
        "PRINT_CONFIG": False,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        return trackeval.datasets.MotChallenge2DBox(config)


def _summary(res: dict[str, dict]) -> Scores:
    hota, clear, ident = res["HOTA"], res["CLEAR"], res["Identity"]
    return Scores(
        hota=float(np.mean(hota["HOTA"])),
        deta=float(np.mean(hota["DetA"])),
        assa=float(np.mean(hota["AssA"])),
        mota=float(clear["MOTA"]),
        motp=float(clear["MOTP"]),
        idf1=float(ident["IDF1"]),
        recall=float(clear["CLR_Re"]),
        precision=float(clear["CLR_Pr"]),
        idsw=int(clear["IDSW"]),
        fp=int(clear["CLR_FP"]),
        fn=int(clear["CLR_FN"]),
        frag=int(clear["Frag"]),
        mostly_tracked=int(clear["MT"]),
        mostly_lost=int(clear["ML"]),
    )

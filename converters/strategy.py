"""Quantisation strategies: the baseline and the repairs the accuracy gate tries, in order.

One strategy value is understood by every INT8 backend (ORT QDQ, NNCF, ai-edge-quantizer), each
mapping it to its own knobs, so the gate's repair loop is the same for all formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Calibrator = Literal["minmax", "percentile", "entropy"]


@dataclass(frozen=True)
class Strategy:
    name: str
    keep_tail_float: bool = True  # the head's decode tail (nodes after the last weighted op)
    float_stem_convs: int = 0  # keep the first N convolutions (and their activations) in float
    float_head_convs: bool = False  # keep the last conv of every head branch in float
    calibrator: Calibrator = "minmax"
    calib_count: int | None = None  # None: use the whole calibration set

    def describe(self) -> dict:
        return {
            "name": self.name,
            "keep_tail_float": self.keep_tail_float,
            "float_stem_convs": self.float_stem_convs,
            "float_head_convs": self.float_head_convs,
            "calibrator": self.calibrator,
            "calib_count": self.calib_count,
        }


# Order = the repair order: tail in float, better calibration, mixed precision.
# The naive baseline is not tried by default (it is known to break YOLO heads); ask for it
# explicitly with strategies=("naive", ...) to demonstrate the gate catching it.
NAIVE = Strategy("naive", keep_tail_float=False)
TAIL_FLOAT = Strategy("tail-float")
BETTER_CALIBRATION = Strategy("tail-float+percentile", calibrator="percentile")
MIXED_STEM = Strategy("tail-float+float-stem", float_stem_convs=2)
MIXED_STEM_HEAD = Strategy("tail-float+float-stem+float-head", float_stem_convs=2, float_head_convs=True)

DEFAULT_REPAIRS: tuple[Strategy, ...] = (TAIL_FLOAT, BETTER_CALIBRATION, MIXED_STEM, MIXED_STEM_HEAD)
BY_NAME = {s.name: s for s in (NAIVE, *DEFAULT_REPAIRS)}

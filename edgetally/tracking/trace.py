"""Where a new track's object was before the track began: boxes no track claimed, traced back.

A weakly detected object (a nano detector scores a distant or half-hidden car 0.25-0.5) often
starts its track only after several boxes too weak to start one. If the track begins just past a
counting line, the counter cannot know which side the object came from and the crossing is lost
(traffic_road.mp4, line x=280: three of 26 at full rate). Those earlier boxes were seen, just not
claimed: the tracker keeps the last ``trace_s`` of them here, and when a new track is confirmed it
walks back through them along the track's own motion, one link at a time, to the earliest box on
that path. That box becomes the track's first box (``Tracks.first_xyxy``, where a line counter arms
a new track).

Only boxes no track took and that do not sit on a matched track (a second box on one object)
are kept, so an object already followed by another track never lends its past to a new id.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edgetally.tracking.assignment import iou_matrix
from edgetally.tracking.kalman import xyxy_to_cxcywh

# Updates kept at most, whatever the timestamps say: a source whose clock stands still must not grow
# the window without end (a 24/7 device). 1 s at 60 fps is 60.
MAX_UPDATES = 256


@dataclass(frozen=True)
class TraceRules:
    """seconds: how far back; gap_s: the longest time between two links; tolerance: a link's
    centre may miss the predicted one by this share of the box size (per axis); size_ratio:
    its width and height within this factor of the box it extends."""

    seconds: float = 1.0
    gap_s: float = 0.75
    tolerance: float = 0.3
    size_ratio: float = 1.5


class UnclaimedBoxes:
    """The last ``rules.seconds`` of boxes (cx, cy, w, h) that no track claimed, per update."""

    def __init__(self, rules: TraceRules) -> None:
        self.rules = rules
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=MAX_UPDATES)

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, timestamp: float, xyxy: np.ndarray, claimed_xyxy: np.ndarray, duplicate_iou: float) -> None:
        """Keep ``xyxy`` (N, 4) seen at ``timestamp``, less boxes overlapping a claimed one by
        ``duplicate_iou`` or more; drop what is older than the window."""
        while self._frames and timestamp - self._frames[0][0] > self.rules.seconds:
            self._frames.popleft()
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        if len(boxes) and len(claimed_xyxy):
            boxes = boxes[iou_matrix(boxes, np.asarray(claimed_xyxy, np.float64)).max(axis=1) < duplicate_iou]
        if len(boxes):
            self._frames.append((timestamp, xyxy_to_cxcywh(boxes)))

    def trace(self, birth_xyxy: np.ndarray, birth_ts: float, now_xyxy: np.ndarray, now_ts: float) -> np.ndarray | None:
        """The earliest box (xyxy) on the path of a track that started at ``birth_xyxy`` and is at
        ``now_xyxy`` now, or None when no unclaimed box extends it back. The velocity is re-measured
        from each new link to ``now``: the baseline grows, the estimate steadies."""
        rules = self.rules
        anchor_c = xyxy_to_cxcywh(np.asarray(birth_xyxy, np.float64).reshape(1, 4))[0]
        now_c = xyxy_to_cxcywh(np.asarray(now_xyxy, np.float64).reshape(1, 4))[0]
        anchor_ts, found = birth_ts, None
        for ts, boxes in reversed(self._frames):
            if ts >= anchor_ts - 1e-9:
                continue
            if anchor_ts - ts > rules.gap_s + 1e-9:
                break
            velocity = (now_c[0:2] - anchor_c[0:2]) / max(now_ts - anchor_ts, 1e-6)
            expected = anchor_c[0:2] - velocity * (anchor_ts - ts)
            offset = np.abs(boxes[:, 0:2] - expected) / np.maximum(anchor_c[2:4], 1.0)
            ratio = boxes[:, 2:4] / np.maximum(anchor_c[2:4], 1.0)
            r = rules.size_ratio
            ok = np.all(offset <= rules.tolerance, axis=1) & np.all((ratio <= r) & (ratio >= 1.0 / r), axis=1)
            if not ok.any():
                continue
            best = int(np.argmin(np.where(ok, offset.sum(axis=1), np.inf)))
            anchor_c, anchor_ts, found = boxes[best], ts, boxes[best]
        if found is None:
            return None
        cx, cy, w, h = found
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

"""A new track's first box traced back through the boxes no track claimed (edgetally/tracking/trace.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgetally.counting import LineCounter
from edgetally.structures import Detections
from edgetally.tracking import Tracker, TrackerConfig
from edgetally.tracking.trace import TraceRules, UnclaimedBoxes


def box(x: float, y: float = 100.0, w: float = 40.0, h: float = 30.0) -> list[float]:
    return [x, y, x + w, y + h]


NONE = np.zeros((0, 4))

# A car moving +100 px/s, born at t=0.4 (x=140) and at x=150 at t=0.5.
BIRTH, BIRTH_TS, NOW, NOW_TS = box(140), 0.4, box(150), 0.5


@pytest.mark.parametrize(
    "kept,expected_x",
    [
        ([(0.0, box(100)), (0.2, box(120))], 100.0),  # two links on its path: the earliest
        ([(0.2, box(123))], 123.0),  # a few px off the predicted 120: within tolerance
        ([(0.2, box(120, y=135))], None),  # a box height below its path
        ([(0.2, box(120, w=90, h=70))], None),  # twice its size: another object
        ([(0.2, box(160))], None),  # ahead of it, not behind: wrong way
        ([(-0.5, box(50))], None),  # 0.9 s before its birth: more than gap_s without a link
        ([(-0.2, box(80)), (0.2, box(120))], 80.0),  # each link within gap_s of the next
        ([(0.45, box(145))], None),  # after its birth: not its past
        ([], None),
    ],
)
def test_trace_follows_the_track_s_motion_back(kept: list, expected_x: float | None) -> None:
    boxes = UnclaimedBoxes(TraceRules(seconds=2.0, gap_s=0.75))
    for ts, b in kept:
        boxes.add(ts, np.array([b]), NONE, 0.7)
    found = boxes.trace(np.array(BIRTH), BIRTH_TS, np.array(NOW), NOW_TS)
    if expected_x is None:
        assert found is None
    else:
        assert found is not None and found[0] == pytest.approx(expected_x)


def test_kept_boxes_leave_out_second_boxes_on_claimed_objects_and_old_frames() -> None:
    boxes = UnclaimedBoxes(TraceRules(seconds=1.0))
    boxes.add(0.0, np.array([box(100)]), NONE, 0.7)
    boxes.add(0.5, np.array([box(101), box(300)]), np.array([box(100)]), 0.7)  # 101 sits on a tracked object
    assert len(boxes) == 2
    assert boxes.trace(np.array(box(310)), 0.6, np.array(box(320)), 0.7)[0] == pytest.approx(300)  # type: ignore[index]
    assert boxes.trace(np.array(box(105)), 0.6, np.array(box(106)), 0.7)[0] == pytest.approx(100)  # type: ignore[index]
    boxes.add(1.2, NONE, NONE, 0.7)  # the frame of t=0.0 is now older than the window
    assert len(boxes) == 1


@pytest.mark.parametrize("trace_s,crossings", [(1.0, 1), (0.0, 0)])
def test_a_weakly_detected_car_whose_track_starts_on_the_line_counts(trace_s: float, crossings: int) -> None:
    """Full rate. A car scored 0.3-0.45 (too weak to start a track) for half a second before the
    line; its first box above new_track_score is on the line, where it says nothing about the side.
    Its track's first box is traced back to the weak boxes on its path, and the crossing counts."""
    tracker = Tracker(TrackerConfig(trace_s=trace_s))
    counter = LineCounter("L", (200, 0), (200, 400), ["person", "bicycle", "car"])
    events = []
    for f in range(40):
        x = 100 + 4 * f  # bottom-centre = x + 20: 200 at frame 20
        boxes, scores = [box(x), box(600 - 3 * f, 300)], [0.45 if f % 2 else 0.3, 0.8]
        if f >= 20:
            scores[0] = 0.7
        frame = Detections(np.array(boxes, np.float32), np.array(scores, np.float32), np.array([2, 2]))
        events += counter.update(tracker.update(frame, f / 30), f, f / 30)
    events += counter.flush()
    assert [e.direction for e in events if e.track_id != 1] == ["out"] * crossings


def test_a_clock_that_stands_still_cannot_grow_the_window_without_end() -> None:
    from edgetally.tracking.trace import MAX_UPDATES

    boxes = UnclaimedBoxes(TraceRules(seconds=1.0))
    for _ in range(3 * MAX_UPDATES):
        boxes.add(5.0, np.array([box(100)]), NONE, 0.7)
    assert len(boxes) == MAX_UPDATES

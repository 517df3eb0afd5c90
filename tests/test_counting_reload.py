"""Counter state across a reload (``carry_over``): tables of (counters after the reload) ->
(events after it, counters reported reset). A track crossed line L (counted ``in``) before the
reload and is still in view after it; its birth box stays above the line, as the tracker keeps it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgetally.counting import LineCounter, ZoneCounter, carry_over
from edgetally.structures import Tracks

LABELS = ["person", "bicycle", "car"]
FPS = 10.0
BIRTH_Y = 40.0  # the track's first detection: well above every line below
BEFORE = [60, 80, 110, 120, 130, 140, 150, 160, 170]  # crosses y=100 going down: "in"
AFTER = list(range(172, 202, 2))
ZONE = [(0, 140), (200, 140), (200, 260), (0, 260)]


def tracks_at(y: float, x: float = 100.0) -> Tracks:
    box = [[x - 10, y - 20, x + 10, y]]
    first = [[x - 10, BIRTH_Y - 20, x + 10, BIRTH_Y]]
    return Tracks(np.array([1]), np.array(box), np.array([0.9]), np.array([2]), first_xyxy=np.array(first))


def feed(counters, ys: list[float], start: int) -> list[tuple[str, str]]:
    events = []
    for i, y in enumerate(ys, start):
        for counter in counters:
            events += [(e.counter, e.direction) for e in counter.update(tracks_at(y), i, i / FPS)]
    return events


def line(y: float = 100.0, name: str = "L", **kw) -> LineCounter:
    return LineCounter(name, (0, y), (200, y), LABELS, **kw)


def zone(poly=ZONE, name: str = "Z") -> ZoneCounter:
    return ZoneCounter(name, poly, LABELS)


CASES = [
    # (case, counters after the reload, carry_over called, events after the reload, reported reset)
    (
        "no carry-over: the crossing counts twice (the bug)",
        lambda: [line(), zone()],
        False,
        [("Z", "entered"), ("L", "in")],
        None,
    ),
    ("same geometry keeps state: no double count", lambda: [line(), zone()], True, [], []),
    ("other tuning, same geometry: state kept", lambda: [line(hysteresis_px=8.0), zone()], True, [], []),
    ("line moved: starts clean, counts nothing by itself", lambda: [line(105.0), zone()], True, [], ["L"]),
    (
        "line moved ahead of the track: the new crossing counts once",
        lambda: [line(178.0), zone()],
        True,
        [("L", "in")],
        ["L"],
    ),
    ("anchor changed: starts clean", lambda: [line(anchor="center"), zone()], True, [], ["L"]),
    (
        "zone changed, still around the track: no second entry",
        lambda: [line(), zone([(0, 120), (200, 120), (200, 300), (0, 300)])],
        True,
        [],
        ["Z"],
    ),
    ("line turned into a zone of the same name: starts clean", lambda: [zone(ZONE, "L"), zone()], True, [], ["L"]),
    ("counter added: the earlier crossing is not counted", lambda: [line(), line(90.0, "M"), zone()], True, [], []),
    ("counter removed: the others keep their state", lambda: [line()], True, [], []),
]


@pytest.mark.parametrize("case, after, carry, want_events, want_reset", CASES, ids=[c[0] for c in CASES])
def test_reload_carry_over(case: str, after, carry: bool, want_events: list, want_reset: list | None) -> None:
    old = [line(), zone()]
    assert feed(old, BEFORE, 0) == [("Z", "entered"), ("L", "in")]
    new = after()
    if carry:
        assert carry_over(old, new) == want_reset
    assert feed(new, AFTER, len(BEFORE)) == want_events


def test_changed_zone_still_counts_the_exit_of_a_track_taken_in_quietly() -> None:
    old = [zone()]
    feed(old, BEFORE, 0)
    new = [zone([(0, 120), (200, 120), (200, 300), (0, 300)])]
    carry_over(old, new)
    events = feed(new, AFTER + [320] * 6, len(BEFORE))  # outside for 0.5 s: the exit settles
    assert events == [("Z", "exited")]  # entered before the reload, left after it: entered - exited stays 0


def test_quiet_ids_are_forgotten_after_the_horizon() -> None:
    """The pre-reload ids are kept only for forget_after_s: an id seen after that is a new track
    (the tracker never reuses ids), armed from its birth box like any other."""
    old = [line(forget_after_s=1.0)]
    feed(old, BEFORE, 0)
    new = [line(120.0, forget_after_s=1.0)]
    carry_over(old, new)
    empty = Tracks.empty()
    for i in range(30):  # 3 s without track 1
        new[0].update(empty, 100 + i, 10 + i / FPS)
    events = [
        e.direction
        for i, y in enumerate([150, 155, 160, 165, 170, 175, 180])
        for e in new[0].update(tracks_at(y), 200 + i, 20 + i / FPS)
    ]
    assert events == ["in"]


def test_reset_and_additions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    old = [line(), zone()]
    feed(old, BEFORE, 0)
    with caplog.at_level(logging.INFO, logger="edgetally.counting.reload"):
        assert carry_over(old, [line(105.0), line(90.0, "M")]) == ["L"]
    text = caplog.text
    assert "'L' changed geometry" in text and "'M' added" in text and "'Z' removed" in text

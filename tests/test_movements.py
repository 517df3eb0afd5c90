"""Turning movements: the MovementCounter's rules as tables, then the junction demo scene, whose truth is
checked against the simulation's plan and whose movements are counted through the runner's counters."""

from __future__ import annotations

import pytest

from edgetally.counting import MovementCounter, movement_name, split_movement
from edgetally.counting.geometry import anchor_points, signed_distance
from edgetally.demo.junction import JunctionConfig, JunctionScene, junction_lines, simulate_junction
from edgetally.demo.junction_eval import NoiseSpec, compare_movements, count_movements
from edgetally.demo.truth import parse_line
from edgetally.structures import CountEvent

APPROACHES = ("north", "east", "south", "west")


def ev(counter: str, direction: str, track: int, t: float, kind: str = "line", cls: str = "car") -> CountEvent:
    return CountEvent(counter, kind, cls, direction, track, int(t * 10), t, 0.8)  # type: ignore[arg-type]


# (events as (counter, direction, track, time[, kind]), expected movements after every track has ended)
CASES = [
    ("straight through", [("west", "in", 1, 1.0), ("east", "out", 1, 4.0)], ["west->east"]),
    ("left turn", [("south", "in", 1, 1.0), ("west", "out", 1, 3.0)], ["south->west"]),
    ("U-turn on one arm", [("north", "in", 1, 1.0), ("north", "out", 1, 6.0)], ["north->north"]),
    ("entered, never left (parked)", [("east", "in", 1, 1.0)], ["east->?"]),
    ("left, never seen entering", [("east", "out", 1, 1.0)], ["?->east"]),
    (
        "first and last approach win",
        [("west", "in", 1, 1.0), ("north", "out", 1, 2.0), ("north", "in", 1, 3.0), ("south", "out", 1, 4.0)],
        ["west->south"],
    ),
    (
        "other counters ignored",
        [("gate", "in", 1, 1.0), ("west", "in", 1, 2.0), ("east", "out", 1, 3.0)],
        ["west->east"],
    ),
    (
        "two tracks",
        [("west", "in", 1, 1.0), ("north", "in", 2, 1.5), ("east", "out", 1, 3.0), ("west", "out", 2, 4.0)],
        ["west->east", "north->west"],
    ),
    (
        "zones: entries count, exits do not",
        [
            ("north", "entered", 1, 1.0, "zone"),
            ("north", "exited", 1, 2.0, "zone"),
            ("east", "entered", 1, 3.0, "zone"),
            ("east", "exited", 1, 4.0, "zone"),
        ],
        ["north->east"],
    ),
    ("zone entered only", [("south", "entered", 1, 1.0, "zone")], ["south->?"]),
]


@pytest.mark.parametrize("name, events, expected", CASES, ids=[c[0] for c in CASES])
def test_movement_rules(name: str, events: list[tuple], expected: list[str]) -> None:
    mc = MovementCounter("j", APPROACHES, "in", forget_after_s=2.0)
    out: list[CountEvent] = []
    for counter, direction, track, t, *kind in events:
        out += mc.update([ev(counter, direction, track, t, *kind)], [track], t)
    assert out == [], "decided before the track ended"
    out += mc.update([], [], 100.0)  # every track unseen for long: decided
    assert sorted(e.direction for e in out) == sorted(expected)
    assert all(e.counter == "j" and e.kind == "movement" for e in out)
    assert mc.num_tracked == 0  # per-track state is dropped once decided


def test_movement_waits_while_the_track_is_visible_and_stamps_the_destination() -> None:
    mc = MovementCounter("j", APPROACHES, forget_after_s=2.0)
    assert mc.update([ev("west", "in", 7, 1.0)], [7], 1.0) == []
    for t in range(2, 60):  # waits at a red light for a minute, still tracked
        assert mc.update([], [7], float(t)) == []
    assert mc.update([ev("north", "out", 7, 60.0, cls="truck")], [7], 60.0) == []
    assert mc.update([], [], 61.5) == []  # unseen for 1.5 s < forget_after_s
    (out,) = mc.update([], [], 62.5)
    assert (out.direction, out.class_name, out.track_id, out.timestamp, out.frame_index) == (
        "west->north",
        "truck",
        7,
        60.0,
        600,
    )


def test_flush_decides_open_trips_as_unfinished() -> None:
    mc = MovementCounter("j", APPROACHES)
    mc.update([ev("south", "in", 1, 1.0), ev("west", "in", 2, 1.0), ev("east", "out", 2, 2.0)], [1, 2], 2.0)
    assert sorted(e.direction for e in mc.flush()) == ["south->?", "west->east"]


@pytest.mark.parametrize("approaches, entry", [(("a",), "in"), (("a", "a"), "in"), (("a", "b"), "sideways")])
def test_movement_counter_refuses_bad_setup(approaches: tuple[str, ...], entry: str) -> None:
    with pytest.raises(ValueError):
        MovementCounter("j", approaches, entry)


@pytest.mark.parametrize("origin, destination, name", [("a", "b", "a->b"), ("a", None, "a->?"), (None, "b", "?->b")])
def test_movement_names_round_trip(origin: str | None, destination: str | None, name: str) -> None:
    assert movement_name(origin, destination) == name and split_movement(name) == (origin, destination)


# -- the junction demo scene -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene() -> JunctionScene:
    return simulate_junction(JunctionConfig(seconds=80, seed=3))


def test_junction_truth_matches_the_simulation_plan(scene: JunctionScene) -> None:
    """For every vehicle seen from its spawn to its exit, the truth read from the boxes and lines is
    the route the simulation drove (an independent check of the truth extraction)."""
    truth = scene.vehicle_movements()
    frames = {fb.index: set(fb.ids.tolist()) for fb in scene.frames}
    last = max(frames)
    whole = [v for v in truth if v not in frames[0] and v not in frames[last]]
    assert len(whole) >= 15
    for vid in whole:
        origin, destination = scene.planned[vid]
        assert truth[vid] == movement_name(origin, destination), vid
    kinds = {mv for mv in truth.values()}
    assert {"north->north", "east->east", "south->south", "west->west"} & kinds, "no U-turn in the scene"
    assert any(mv.endswith("->?") for mv in kinds), "no vehicle that entered and never left"
    assert any(mv.startswith("?->") for mv in kinds), "no vehicle already inside at the first frame"


def _started_on_a_line(scene: JunctionScene, vid: int, px: float = 3.0) -> bool:
    """Whether the vehicle's first anchor is within ``px`` of an approach line (a counter cannot know
    which side it came from: it arms a side only once the anchor is clear of the line)."""
    _, boxes = scene.trajectories()[vid]
    point = anchor_points(boxes[:1], "bottom_center")
    return any(
        abs(float(signed_distance(point, *parse_line(ln))[0])) <= px for ln in junction_lines(scene.config).values()
    )


def test_junction_movements_with_exact_tracks_match_the_truth(scene: JunctionScene) -> None:
    """The runner's line counters + MovementCounter on the exact tracks: every vehicle's movement is
    right, except one that appears standing on an approach line at the first frame."""
    truth = scene.vehicle_movements()
    _, events = count_movements(scene, "ids")
    counted = {e.track_id: e.direction for e in events}
    wrong = sorted(v for v in set(truth) | set(counted) if truth.get(v) != counted.get(v))
    assert len(truth) >= 25
    assert all(_started_on_a_line(scene, v) for v in wrong), {v: (truth.get(v), counted.get(v)) for v in wrong}
    assert len(wrong) <= 1


def test_junction_movements_through_the_tracker(scene: JunctionScene) -> None:
    """Detections -> Tracker -> counters -> movements: id switches in turns split a trip into an
    unfinished origin and an unknown-origin destination. The benchmark (benchmarks/junction_bench.py)
    reports the per-movement table; this pins the level (measured 27.5 % with exact boxes)."""
    truth = scene.movement_counts()
    counted, _ = count_movements(scene, "noisy", NoiseSpec(seed=1))
    result = compare_movements(truth, counted)
    assert result["truth_total"] == sum(sum(d.values()) for d in truth.values()) and result["truth_total"] >= 25
    assert result["movement_abs_error_pct"] <= 40.0, result["rows"]
    assert result["exact_movements"] >= result["movements"] // 3

"""A four-arm junction seen from above, with exact ground truth for every turning movement.

Right-hand traffic on two crossing two-lane roads. Vehicles (car, truck, bus, bicycle) arrive on each
arm, queue at the stop line, cross the junction box one at a time (an all-way stop) and leave by
any arm: straight on, left, right, or a U-turn back where they came from; a few turn into a car
park in the north-east corner and stay there (they never leave by an arm: *unfinished*). The
simulation starts before frame 0, so vehicles already inside the junction at the first frame give
movements whose origin the camera never saw.

The counting geometry ships with the scene: one line across each arm just outside the box,
oriented so ``in`` means *into the junction* (``JUNCTION_LINES``). The truth of a vehicle is the
first and last approach line its anchor (bottom centre of its box, as the counters use) crosses in
the frames, by the rule of ``edgetally.demo.truth`` (sign change of the side, the move meeting the
segment); with one crossing only it is unfinished (``north->?``, or ``?->north`` when that crossing
was outbound). numpy only; ``junction_render.py`` draws the frames.

    scene = simulate_junction(JunctionConfig(seconds=60, seed=3))
    scene.movement_counts()   # {"car": {"west->north": 3, ...}, ...}
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edgetally.counting.movements import movement_name
from edgetally.demo.sprites import CLASSES
from edgetally.demo.truth import FrameBoxes, parse_line, track_crossings

ARMS = ("north", "east", "south", "west")
HEADING = {"east": (1.0, 0.0), "west": (-1.0, 0.0), "south": (0.0, 1.0), "north": (0.0, -1.0)}
# Inbound travel direction per arm (a vehicle arriving from the north drives south).
INBOUND = {"north": "south", "east": "west", "south": "north", "west": "east"}
OUTBOUND = {"north": "north", "east": "east", "south": "south", "west": "west"}
SIZES = {"car": (34.0, 16.0), "truck": (50.0, 20.0), "bus": (62.0, 20.0), "bicycle": (16.0, 6.0)}  # length, width
SPEEDS = {"car": (80.0, 120.0), "truck": (60.0, 90.0), "bus": (55.0, 80.0), "bicycle": (35.0, 55.0)}  # px/s
CLASS_WEIGHTS = (0.66, 0.14, 0.08, 0.12)
TURN_WEIGHTS = {"straight": 0.44, "left": 0.22, "right": 0.22, "uturn": 0.06, "park": 0.06}
PARKING = (470.0, 95.0)  # where the car park's bays are (north-east corner, outside every approach line)
_LEFT = {"north": "east", "east": "south", "south": "west", "west": "north"}  # left turn when arriving from arm
_RIGHT = {v: k for k, v in _LEFT.items()}
_OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
_WARMUP_S = 20.0
_GAP_PX = 8.0
_ACCEL_S = 2.0  # seconds from standstill to cruising speed
_TURN_SPEED = 0.6  # of the cruising speed, while turning in the box


@dataclass(frozen=True)
class JunctionConfig:
    width: int = 640
    height: int = 480
    fps: float = 15.0
    seconds: float = 60.0
    seed: int = 0
    rate: float = 0.09  # arrivals per second per arm
    box: tuple[float, float, float, float] = (260.0, 180.0, 380.0, 300.0)  # junction box x0, y0, x1, y1
    lane_offset: float = 30.0
    line_margin: float = 30.0  # approach lines this far outside the box

    @property
    def num_frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


def junction_lines(cfg: JunctionConfig) -> dict[str, tuple[float, float, float, float]]:
    """One directed line per arm, the junction on its right-hand side (``in`` = entering)."""
    x0, y0, x1, y1 = cfg.box
    m = cfg.line_margin
    return {
        "north": (x0, y0 - m, x1, y0 - m),
        "east": (x1 + m, y0, x1 + m, y1),
        "south": (x1, y1 + m, x0, y1 + m),
        "west": (x0 - m, y1, x0 - m, y0),
    }


def _lane_point(cfg: JunctionConfig, travel: str, along: float) -> np.ndarray:
    """A point on the lane of vehicles travelling ``travel``; ``along`` = coordinate in that direction."""
    cx, cy = cfg.centre
    dx, dy = HEADING[travel]
    off = cfg.lane_offset
    if dy == 0:  # horizontal road: eastbound below the centre line, westbound above
        return np.array([along, cy + off * dx])
    return np.array([cx - off * dy, along])  # southbound left of the centre line, northbound right


def _path(cfg: JunctionConfig, origin: str, turn: str) -> tuple[np.ndarray, float, float, str | None]:
    """Polyline (K, 2) of a vehicle's centre, arc length where it reaches / leaves the box, destination."""
    x0, y0, x1, y1 = cfg.box
    w, h = cfg.width, cfg.height
    travel_in = INBOUND[origin]
    far = {"south": -80.0, "north": h + 80.0, "east": -80.0, "west": w + 80.0}[travel_in]
    edge = {"south": y0, "north": y1, "east": x0, "west": x1}[travel_in]
    start, entry = _lane_point(cfg, travel_in, far), _lane_point(cfg, travel_in, edge)
    h_in = np.array(HEADING[travel_in])
    if turn == "park":
        goal = np.array(PARKING)
        middle = _bezier(entry, entry + 40 * h_in, goal - np.array([0.0, -40.0]), goal)
        return _concat([start, entry], middle), *_box_span(start, entry, middle, cfg), None
    dest = {"straight": _OPPOSITE[origin], "left": _LEFT[origin], "right": _RIGHT[origin], "uturn": origin}[turn]
    travel_out = OUTBOUND[dest]
    edge_out = {"south": y1, "north": y0, "east": x1, "west": x0}[travel_out]
    far_out = {"south": h + 80.0, "north": -80.0, "east": w + 80.0, "west": -80.0}[travel_out]
    exit_pt, end = _lane_point(cfg, travel_out, edge_out), _lane_point(cfg, travel_out, far_out)
    h_out = np.array(HEADING[travel_out])
    k = 0.45 * (x1 - x0)
    ctrl2 = exit_pt + k * h_in if turn == "uturn" else exit_pt - k * h_out
    middle = _bezier(entry, entry + k * h_in, ctrl2, exit_pt)
    poly = _concat([start, entry], middle, [exit_pt, end])
    return poly, *_box_span(start, entry, middle, cfg), dest


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, n: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def _concat(*parts: object) -> np.ndarray:
    pts = np.vstack([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in parts])
    keep = np.r_[True, np.any(np.abs(np.diff(pts, axis=0)) > 1e-9, axis=1)]
    return pts[keep]


def _box_span(start: np.ndarray, entry: np.ndarray, middle: np.ndarray, cfg: JunctionConfig) -> tuple[float, float]:
    """Arc lengths where the path enters the box and where its centre line leaves it again."""
    x0, y0, x1, y1 = cfg.box
    s_in = float(np.linalg.norm(entry - start))
    seg = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(middle, axis=0), axis=1))]
    inside = (middle[:, 0] >= x0 - 1) & (middle[:, 0] <= x1 + 1) & (middle[:, 1] >= y0 - 1) & (middle[:, 1] <= y1 + 1)
    outside = np.flatnonzero(~inside[1:])
    return s_in, s_in + float(seg[outside[0] + 1] if outside.size else seg[-1])


@dataclass(eq=False)
class _Vehicle:
    vid: int
    class_id: int
    origin: str
    turn: str
    destination: str | None
    path: np.ndarray
    cum: np.ndarray  # arc length at each path vertex
    s_entry: float
    s_exit: float
    speed: float  # cruising speed, px per frame
    length: float
    width: float
    s: float = 0.0
    v: float = 0.0  # current speed, px per frame (vehicles accelerate, brake and slow down to turn)
    path_list: list[tuple[float, float]] = field(default_factory=list)
    cum_list: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path_list = [(float(x), float(y)) for x, y in self.path]
        self.cum_list = [float(c) for c in self.cum]

    dwell_frames: int = 0  # parked vehicles: frames left before they drive into the garage


def _position(v: _Vehicle) -> tuple[float, float, float, float]:
    """Centre (x, y) and unit heading (hx, hy) at arc length ``v.s``. Plain floats: called per
    vehicle per frame, where numpy scalars cost more than the arithmetic."""
    cum = v.cum_list
    i = min(max(bisect.bisect_left(cum, v.s) - 1, 0), len(cum) - 2)
    (x0, y0), (x1, y1) = v.path_list[i], v.path_list[i + 1]
    n = math.hypot(x1 - x0, y1 - y0) or 1.0
    hx, hy = (x1 - x0) / n, (y1 - y0) / n
    t = v.s - cum[i]
    return x0 + hx * t, y0 + hy * t, hx, hy


def vehicle_corners(v: _Vehicle) -> np.ndarray:
    """(4, 2) corners of the vehicle's rectangle (its length along the heading)."""
    cx, cy, hx, hy = _position(v)
    ax, ay, bx, by = hx * v.length / 2, hy * v.length / 2, -hy * v.width / 2, hx * v.width / 2
    return np.array(
        [
            [cx + ax + bx, cy + ay + by],
            [cx + ax - bx, cy + ay - by],
            [cx - ax - bx, cy - ay - by],
            [cx - ax + bx, cy - ay + by],
        ]
    )


@dataclass(frozen=True)
class JunctionScene:
    config: JunctionConfig
    frames: tuple[FrameBoxes, ...]
    vehicle_classes: dict[int, int]
    corners: tuple[dict[int, np.ndarray], ...] = field(repr=False)  # per frame: vehicle id -> (4, 2)
    planned: dict[int, tuple[str, str | None]] = field(default_factory=dict, repr=False)  # id -> (origin, destination)

    @property
    def labels(self) -> tuple[str, ...]:
        return CLASSES

    def trajectories(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        per: dict[int, tuple[list[int], list[np.ndarray]]] = {}
        for fb in self.frames:
            for vid, box in zip(fb.ids.tolist(), fb.xyxy):
                per.setdefault(vid, ([], []))[0].append(fb.index)
                per[vid][1].append(box)
        return {v: (np.asarray(f, np.int64), np.asarray(b, np.float64)) for v, (f, b) in per.items()}

    def vehicle_movements(self) -> dict[int, str]:
        """Vehicle id -> its true movement (only vehicles that crossed at least one approach line)."""
        lines = {arm: parse_line(ln) for arm, ln in junction_lines(self.config).items()}
        out: dict[int, str] = {}
        for vid, (frames, boxes) in self.trajectories().items():
            touches = sorted(
                (f, arm, d) for arm, (p1, p2) in lines.items() for f, d in track_crossings(frames, boxes, p1, p2)
            )
            if len(touches) >= 2:
                out[vid] = movement_name(touches[0][1], touches[-1][1])
            elif touches:
                _, arm, direction = touches[0]
                out[vid] = movement_name(arm, None) if direction == "in" else movement_name(None, arm)
        return out

    def movement_counts(self) -> dict[str, dict[str, int]]:
        """class -> movement -> vehicles."""
        counts: dict[str, dict[str, int]] = {}
        for vid, mv in self.vehicle_movements().items():
            per = counts.setdefault(CLASSES[self.vehicle_classes[vid]], {})
            per[mv] = per.get(mv, 0) + 1
        return counts


class _Traffic:
    def __init__(self, cfg: JunctionConfig, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        self.vehicles: list[_Vehicle] = []
        self.next_vid = 1
        self.due = {arm: float(rng.exponential(1.0 / cfg.rate)) for arm in ARMS}
        self.box_owner: _Vehicle | None = None

    def _spawn(self, arm: str) -> _Vehicle:
        rng, cfg = self.rng, self.cfg
        cid = int(rng.choice(len(CLASSES), p=CLASS_WEIGHTS))
        name = CLASSES[cid]
        turns = list(TURN_WEIGHTS)
        turn = turns[int(rng.choice(len(turns), p=np.array(list(TURN_WEIGHTS.values())) / sum(TURN_WEIGHTS.values())))]
        if name in ("truck", "bus") and turn in ("uturn", "park"):
            turn = "straight"  # no room for that
        path, s_in, s_out, dest = _path(cfg, arm, turn)
        cum = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
        length, width = SIZES[name]
        speed = float(rng.uniform(*SPEEDS[name])) / cfg.fps
        v = _Vehicle(self.next_vid, cid, arm, turn, dest, path, cum, s_in, s_out, speed, length, width, v=speed)
        v.dwell_frames = int(rng.uniform(4.0, 40.0) * cfg.fps) if turn == "park" else 0
        self.next_vid += 1
        return v

    def step(self, t: float) -> list[_Vehicle]:
        for arm in ARMS:
            if t >= self.due[arm]:
                self.vehicles.append(self._spawn(arm))
                self.due[arm] = t + float(self.rng.exponential(1.0 / self.cfg.rate))
        for v in self.vehicles:
            self._move(v)
        self.vehicles = [v for v in self.vehicles if not self._gone(v)]
        return self.vehicles

    def _move(self, v: _Vehicle) -> None:
        if v.s >= v.cum_list[-1]:  # parked
            v.dwell_frames -= 1
            return
        accel = v.speed / (_ACCEL_S * self.cfg.fps)  # px per frame per frame
        in_box = v.s_entry - v.length / 2 <= v.s <= v.s_exit + v.length / 2
        limit = v.cum_list[-1]
        stop = v.s_entry - v.length / 2 - 2.0
        if v.s <= stop + 1e-6 and not self._may_enter(v):
            limit = stop
        leader = self._leader(v)
        if leader is not None:
            limit = min(limit, leader.s - (leader.length + v.length) / 2 - _GAP_PX)
        room = max(limit - v.s, 0.0)
        cruise = v.speed * (_TURN_SPEED if in_box and v.turn != "straight" else 1.0)
        speed = min(v.v + accel, cruise, math.sqrt(2.0 * 1.5 * accel * room), room)
        v.s += max(speed, 0.0)
        v.v = max(speed, 0.0)
        if self.box_owner is v and v.s - v.length / 2 > v.s_exit:
            self.box_owner = None

    def _may_enter(self, v: _Vehicle) -> bool:
        """The box takes one vehicle at a time (first come, first served)."""
        if (
            self.box_owner is None
            or self._gone(self.box_owner)
            or self.box_owner.s - self.box_owner.length / 2 > self.box_owner.s_exit
        ):
            self.box_owner = v
        return self.box_owner is v

    def _leader(self, v: _Vehicle) -> _Vehicle | None:
        """The nearest vehicle ahead on the same arm, before both are past the box entry."""
        ahead = [
            u
            for u in self.vehicles
            if u is not v and u.origin == v.origin and u.s > v.s and u.s - u.length / 2 < u.s_entry
        ]
        return min(ahead, key=lambda u: u.s) if ahead else None

    def _gone(self, v: _Vehicle) -> bool:
        end = v.s >= v.cum_list[-1]
        return end and (v.destination is not None or v.dwell_frames <= 0)


def iter_junction(
    cfg: JunctionConfig, planned: dict[int, tuple[str, str | None]] | None = None
) -> Iterator[tuple[FrameBoxes, dict[int, np.ndarray], dict[int, int]]]:
    """Per frame: exact boxes, each visible vehicle's corners, and vehicle id -> class id so far.
    ``planned`` (filled when given): vehicle id -> (arm it came from, arm it leaves by or None)."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(1)[0])
    traffic = _Traffic(cfg, rng)
    for k in range(int(_WARMUP_S * cfg.fps)):
        traffic.step(k / cfg.fps)
    classes: dict[int, int] = {}
    for i in range(cfg.num_frames):
        vehicles = traffic.step(_WARMUP_S + i / cfg.fps)
        ids, cids, boxes, corners = [], [], [], {}
        for v in vehicles:
            pts = vehicle_corners(v)
            xs, ys = pts[:, 0].tolist(), pts[:, 1].tolist()
            x0, y0, x1, y1 = max(min(xs), 0.0), max(min(ys), 0.0), min(max(xs), cfg.width), min(max(ys), cfg.height)
            if x1 - x0 < 1.0 or y1 - y0 < 1.0:
                continue
            ids.append(v.vid)
            cids.append(v.class_id)
            boxes.append([x0, y0, x1, y1])
            corners[v.vid] = pts
            classes[v.vid] = v.class_id
            if planned is not None:
                planned[v.vid] = (v.origin, v.destination)
        n = len(ids)
        yield (
            FrameBoxes(
                i,
                np.array(ids, np.int64),
                np.array(cids, np.int64),
                np.array(boxes, np.float32).reshape(-1, 4),
                np.ones(n, np.float32),
            ),
            corners,
            classes,
        )


def simulate_junction(cfg: JunctionConfig) -> JunctionScene:
    frames, corners = [], []
    classes: dict[int, int] = {}
    planned: dict[int, tuple[str, str | None]] = {}
    for fb, pts, classes in iter_junction(cfg, planned):  # noqa: B007 - the last value is the result
        frames.append(fb)
        corners.append(pts)
    return JunctionScene(cfg, tuple(frames), dict(classes), tuple(corners), planned)

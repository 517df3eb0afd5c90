"""Deterministic synthetic traffic scene with exact ground truth. numpy + cv2 only (no torch).

A straight road seen from an elevated camera at an angle: six lanes across the frame, the far three
(top) going right-to-left, the near three (bottom) left-to-right, a bike lane on each side.
Perspective makes far lanes smaller and slower on screen. Vehicles (car, truck, bus, bicycle) have
random size, colour, texture and speed; near vehicles hide far ones, a tree and a pole hide both;
the light changes over time (global gain, colour tint, a drifting cloud shadow) and every frame
gets sensor noise, then mp4 compression.

Two random streams come from one seed: the traffic (which vehicle, when, how fast, how it looks)
and the camera (noise, lighting). The ground truth depends only on the traffic stream.

    truth = render_scene(SceneConfig(seconds=30, seed=7), Path("scene.mp4"))
    truth.counts("320,0,320,360")   # {"car": {"in": .., "out": ..}, ...}

``view="topdown"`` films the same kind of traffic from straight above (topdown.py): four lanes and
two cycle lanes at one scale, no occluders; the truth is computed the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgetally.demo.render import draw_background, draw_occluders, make_camera, paste
from edgetally.demo.sprites import CLASSES, Sprite, make_sprite
from edgetally.demo.topdown import TOPDOWN_LANES, TOPDOWN_SCALE, draw_topdown_background, make_topdown_sprite
from edgetally.demo.truth import Crossing, FrameBoxes, SceneTruth, parse_line

__all__ = [
    "CLASSES",
    "Crossing",
    "DEFAULT_LINE",
    "FrameBoxes",
    "SceneConfig",
    "SceneTruth",
    "iter_scene",
    "render_scene",
    "parse_line",
]

# The demo's counting line: vertical through the middle; "in" = right-to-left (see truth.py).
DEFAULT_LINE = (320.0, 0.0, 320.0, 360.0)


@dataclass(frozen=True)
class Lane:
    """ground_y: where wheels touch the road, as a fraction of the frame height; direction +1 =
    left-to-right; scale: perspective size factor; kinds/weights: what drives here."""

    ground_y: float
    direction: int
    scale: float
    kinds: tuple[str, ...]
    weights: tuple[float, ...]
    rate: float  # vehicles per second at density 1


_MOTOR = ("car", "truck", "bus")
LANES: tuple[Lane, ...] = (
    Lane(0.300, -1, 0.62, ("bicycle",), (1.0,), 0.10),
    Lane(0.420, -1, 0.70, _MOTOR, (0.62, 0.24, 0.14), 0.22),
    Lane(0.530, -1, 0.79, _MOTOR, (0.75, 0.15, 0.10), 0.26),
    Lane(0.665, +1, 0.89, _MOTOR, (0.75, 0.15, 0.10), 0.26),
    Lane(0.810, +1, 0.98, _MOTOR, (0.62, 0.24, 0.14), 0.22),
    Lane(0.935, +1, 1.06, ("bicycle",), (1.0,), 0.10),
)
# Screen speed at scale 1, px/s (uniform range per class).
VIEWS = ("side", "topdown")
# Top-down lanes: ground_y is the lane's centre line (a sprite is centred on it, see _spawn).
TOPDOWN = tuple(Lane(c, d, TOPDOWN_SCALE, k, w, r) for c, d, k, w, r in TOPDOWN_LANES)
SPEEDS = {"car": (95.0, 165.0), "truck": (70.0, 115.0), "bus": (65.0, 100.0), "bicycle": (32.0, 60.0)}


@dataclass(frozen=True)
class SceneConfig:
    width: int = 640
    height: int = 360
    fps: float = 15.0
    seconds: float = 30.0
    seed: int = 0
    density: float = 1.0  # multiplies every lane's arrival rate
    noise_sigma: float = 4.0  # camera noise, grey levels
    lighting: float = 0.3  # amplitude of the slow brightness change (0 = constant light)
    occluders: bool = True  # a tree and a pole in front of the road
    lanes: tuple[Lane, ...] = field(default=LANES)
    view: str = "side"  # "side" (elevated, oblique) or "topdown" (straight above; its own lanes)

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"view: expected one of {VIEWS}, got {self.view!r}")
        if self.view == "topdown" and self.lanes is LANES:
            object.__setattr__(self, "lanes", TOPDOWN)

    @property
    def num_frames(self) -> int:
        return int(round(self.seconds * self.fps))


@dataclass(eq=False)  # identity semantics: two vehicles are never "equal"
class _Vehicle:
    """Mutable simulation state of one vehicle (owned by one simulation)."""

    vid: int
    class_id: int
    lane: int
    sprite: Sprite
    x: float  # left edge of the sprite, px (float; drawn at round(x))
    y2: int  # bottom row + 1 (ground contact)
    speed: float  # signed, px per frame


def _spawn(cfg: SceneConfig, lane_idx: int, vid: int, rng: np.random.Generator, ahead: _Vehicle | None) -> _Vehicle:
    lane = cfg.lanes[lane_idx]
    kind = lane.kinds[int(rng.choice(len(lane.kinds), p=np.asarray(lane.weights) / sum(lane.weights)))]
    draw = make_topdown_sprite if cfg.view == "topdown" else make_sprite
    sprite = draw(kind, lane.scale * cfg.height / 360.0, rng)
    if lane.direction < 0:
        sprite = sprite.mirrored()
    speed = rng.uniform(*SPEEDS[kind]) * lane.scale * cfg.height / 360.0 / cfg.fps
    x = -sprite.width if lane.direction > 0 else float(cfg.width)
    if ahead is not None:
        speed = min(speed, _max_safe_speed(cfg, ahead, sprite.width, x))
    y2 = int(round(lane.ground_y * cfg.height)) + int(rng.integers(-2, 3))
    if cfg.view == "topdown":
        y2 += sprite.height // 2
    return _Vehicle(vid, CLASSES.index(kind), lane_idx, sprite, x, y2, speed * lane.direction)


def _max_safe_speed(cfg: SceneConfig, ahead: _Vehicle, width: int, x: float) -> float:
    """Fastest speed (px/frame) at which a new vehicle never reaches the one ahead in the frame."""
    v = abs(ahead.speed)
    if ahead.speed > 0:
        gap = ahead.x - (x + width)
        frames_left = (cfg.width - ahead.x) / v
    else:
        gap = x - (ahead.x + ahead.sprite.width)
        frames_left = (ahead.x + ahead.sprite.width) / v
    margin = 6.0
    return v + max(gap - margin, 0.0) / max(frames_left, 1.0)


def _lane_clear(cfg: SceneConfig, ahead: _Vehicle | None, min_gap: float) -> bool:
    if ahead is None:
        return True
    if ahead.speed > 0:
        return ahead.x >= min_gap
    return ahead.x + ahead.sprite.width <= cfg.width - min_gap


class _Traffic:
    """The traffic random stream: spawns, moves and retires vehicles frame by frame."""

    def __init__(self, cfg: SceneConfig, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        self.vehicles: list[_Vehicle] = []
        self.last: list[_Vehicle | None] = [None] * len(cfg.lanes)
        self.next_vid = 1
        self.due = [self._gap(i) * rng.uniform(0.0, 1.0) for i in range(len(cfg.lanes))]

    def _gap(self, lane_idx: int) -> float:
        rate = self.cfg.lanes[lane_idx].rate * self.cfg.density
        return float(self.rng.exponential(1.0 / rate)) if rate > 0 else float("inf")  # density 0: empty road

    def step(self, t: float) -> list[_Vehicle]:
        """Advance to time t (s) and return the vehicles now on screen, in drawing order."""
        for v in self.vehicles:
            v.x += v.speed
        w = self.cfg.width
        self.vehicles = [v for v in self.vehicles if v.x < w and v.x + v.sprite.width > 0 or self._entering(v)]
        for i in range(len(self.cfg.lanes)):
            if t >= self.due[i] and _lane_clear(self.cfg, self.last[i], 12.0 * self.cfg.lanes[i].scale):
                v = _spawn(self.cfg, i, self.next_vid, self.rng, self._ahead(i))
                self.next_vid += 1
                self.vehicles.append(v)
                self.last[i] = v
                self.due[i] = t + self._gap(i)
        self.vehicles.sort(key=lambda v: (v.lane, v.vid))  # far lanes first: near ones hide them
        return self.vehicles

    def _entering(self, v: _Vehicle) -> bool:
        return (v.speed > 0 and v.x + v.sprite.width <= 0) or (v.speed < 0 and v.x >= self.cfg.width)

    def _ahead(self, lane_idx: int) -> _Vehicle | None:
        v = self.last[lane_idx]
        return v if v is not None and any(u is v for u in self.vehicles) else None


_WARMUP_S = 10.0  # simulate this long before frame 0 so the road is already busy


def _column_extents(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sprite column: first and last+1 mask row (0, 0 for an empty column)."""
    any_col = mask.any(axis=0)
    top = np.where(any_col, mask.argmax(axis=0), 0)
    bottom = np.where(any_col, mask.shape[0] - mask[::-1].argmax(axis=0), 0)
    return top, bottom


def _visible_box(v: _Vehicle, extents: dict[int, tuple[np.ndarray, np.ndarray]], w: int, h: int) -> np.ndarray | None:
    """Tight box (4,) of the vehicle's pixels inside the frame (occlusion ignored), or None."""
    x, y = int(round(v.x)), v.y2 - v.sprite.height
    c0, c1 = max(0, -x), min(v.sprite.width, w - x)
    if c1 <= c0:
        return None
    if v.vid not in extents:
        extents[v.vid] = _column_extents(v.sprite.mask)
    top, bottom = extents[v.vid]
    cols = np.flatnonzero(bottom[c0:c1] > 0)
    if cols.size == 0:
        return None
    y1, y2 = max(int(top[c0:c1][cols].min()) + y, 0), min(int(bottom[c0:c1][cols].max()) + y, h)
    if y2 <= y1:
        return None
    return np.array([x + c0 + cols[0], y1, x + c0 + cols[-1] + 1, y2], np.float32)


def _frame_truth(index: int, drawn: list[tuple[_Vehicle, np.ndarray]], labels: np.ndarray) -> FrameBoxes:
    return FrameBoxes(
        index=index,
        ids=np.array([v.vid for v, _ in drawn], np.int64),
        class_ids=np.array([v.class_id for v, _ in drawn], np.int64),
        xyxy=np.array([b for _, b in drawn], np.float32).reshape(-1, 4),
        visibility=np.array([_visibility(v, b, labels, i + 1) for i, (v, b) in enumerate(drawn)], np.float32),
    )


def _visibility(v: _Vehicle, box: np.ndarray, labels: np.ndarray, label: int) -> float:
    """Visible share of the vehicle's in-frame pixels: its label survives only where nothing
    nearer (a later vehicle, an occluder) was drawn over it."""
    x, y = int(round(v.x)), v.y2 - v.sprite.height
    bx0, by0, bx1, by1 = (int(c) for c in box)
    area = int(v.sprite.mask[by0 - y : by1 - y, bx0 - x : bx1 - x].sum())
    seen = int(np.count_nonzero(labels[by0:by1, bx0:bx1] == label))
    return seen / max(area, 1)


def iter_scene(cfg: SceneConfig) -> Iterator[tuple[np.ndarray, FrameBoxes, dict[int, int]]]:
    """Yield (frame (H, W, 3) uint8 BGR, its exact boxes, vehicle id -> class id so far) per frame.

    The frame is a buffer reused for the next frame: copy it to keep it.
    """
    traffic_rng, camera_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(2))
    w, h, n = cfg.width, cfg.height, cfg.num_frames
    if cfg.view == "topdown":
        background, occluders = draw_topdown_background(w, h, camera_rng), []
    else:
        background = draw_background(w, h, camera_rng)
        occluders = draw_occluders(w, h, camera_rng) if cfg.occluders else []
    camera = make_camera(w, h, cfg.fps, cfg.lighting, cfg.noise_sigma, camera_rng)
    traffic = _Traffic(cfg, traffic_rng)
    warmup = int(round(_WARMUP_S * cfg.fps))
    for k in range(warmup):
        traffic.step((k - warmup) / cfg.fps + _WARMUP_S)
    frame = np.empty_like(background)
    labels = np.zeros((h, w), np.int32)
    extents: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    classes: dict[int, int] = {}
    for i in range(n):
        vehicles = traffic.step(_WARMUP_S + i / cfg.fps)
        np.copyto(frame, background)
        labels.fill(0)
        drawn: list[tuple[_Vehicle, np.ndarray]] = []
        for v in vehicles:
            box = _visible_box(v, extents, w, h)
            if box is None:
                continue
            drawn.append((v, box))
            classes[v.vid] = v.class_id
            paste(frame, labels, v.sprite, int(round(v.x)), v.y2 - v.sprite.height, len(drawn))
        for part, ox, oy in occluders:
            paste(frame, labels, part, ox, oy, 0)
        live = {v.vid for v in vehicles}
        for vid in [k for k in extents if k not in live]:
            del extents[vid]  # bounded memory over long scenes
        yield camera.apply(frame, i), _frame_truth(i, drawn, labels), classes


def render_scene(config: SceneConfig, out_video: Path | None = None) -> SceneTruth:
    """Render the scene to ``out_video`` (mp4v; None = truth only) and return its exact truth."""
    writer = None
    if out_video is not None:
        Path(out_video).parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(
            str(out_video), cv2.VideoWriter_fourcc(*"mp4v"), config.fps, (config.width, config.height)
        )
        if not writer.isOpened():
            raise OSError(f"cannot open a video writer for {out_video}")
    frames: list[FrameBoxes] = []
    classes: dict[int, int] = {}
    try:
        for image, boxes, classes in iter_scene(config):  # noqa: B007 - the last value is used below
            if writer is not None:
                writer.write(image)
            frames.append(boxes)
    finally:
        if writer is not None:
            writer.release()
    return SceneTruth(CLASSES, config.width, config.height, config.fps, config.seed, tuple(frames), dict(classes))

"""Frames of the junction scene (demo/junction.py): roads, markings, a car park, vehicles from above.

For people and for the line editor (a picture to draw lines on); the counting evaluation runs on the
scene's exact boxes (the demo detector was trained on side views of a straight road and does not
know vehicles seen from above).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgetally.demo.junction import PARKING, JunctionConfig, JunctionScene, iter_junction
from edgetally.demo.render import make_camera
from edgetally.demo.sprites import CLASSES

_ROOF = {"car": 0.55, "truck": 0.3, "bus": 0.85, "bicycle": 0.0}
_COLOURS = ((200, 200, 205), (40, 40, 45), (40, 40, 170), (150, 70, 30), (40, 120, 40), (30, 170, 220), (120, 120, 125))


def draw_background(cfg: JunctionConfig, rng: np.random.Generator) -> np.ndarray:
    w, h = cfg.width, cfg.height
    img = np.full((h, w, 3), (70, 110, 80), np.uint8)
    img = np.clip(img.astype(np.int16) + rng.integers(-8, 9, size=(h, w, 1)), 0, 255).astype(np.uint8)
    x0, y0, x1, y1 = (int(v) for v in cfg.box)
    road = (82, 84, 86)
    cv2.rectangle(img, (0, y0), (w, y1), road, -1)
    cv2.rectangle(img, (x0, 0), (x1, h), road, -1)
    px, py = PARKING
    cv2.rectangle(img, (int(px) - 70, int(py) - 40), (int(px) + 70, int(py) + 40), (95, 97, 100), -1)
    for k in range(-3, 4):
        cv2.line(img, (int(px) + 20 * k, int(py) - 40), (int(px) + 20 * k, int(py) - 15), (220, 220, 220), 1)
    cv2.line(img, (x1 - 12, y0 + 14), (int(px) - 30, int(py) + 30), road, 26)  # the car park's access
    cx, cy = (int(v) for v in cfg.centre)
    for a, b in (((0, cy), (x0, cy)), ((x1, cy), (w, cy)), ((cx, 0), (cx, y0)), ((cx, y1), (cx, h))):
        _dashed(img, a, b)
    white = (230, 230, 230)
    cv2.line(img, (x0, cy), (x0, y1), white, 3)  # stop lines on each inbound lane
    cv2.line(img, (x1, y0), (x1, cy), white, 3)
    cv2.line(img, (x0, y0), (cx, y0), white, 3)
    cv2.line(img, (cx, y1), (x1, y1), white, 3)
    return img


def _dashed(img: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> None:
    n = max(1, int(np.hypot(b[0] - a[0], b[1] - a[1]) // 24))
    for i in range(n):
        p = np.add(a, np.subtract(b, a) * i / n)
        q = np.add(a, np.subtract(b, a) * (i + 0.5) / n)
        cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), (210, 210, 210), 2)


def draw_vehicle(img: np.ndarray, corners: np.ndarray, class_id: int, colour: tuple[int, int, int]) -> None:
    pts = np.round(corners).astype(np.int32)
    cv2.fillConvexPoly(img, pts, colour, cv2.LINE_AA)
    cv2.polylines(img, [pts], True, (20, 20, 20), 1, cv2.LINE_AA)
    roof = _ROOF[CLASSES[class_id]]
    if roof > 0:  # a darker roof / windscreen block towards the front
        front, back = (corners[0] + corners[1]) / 2, (corners[2] + corners[3]) / 2
        mid = back + (front - back) * 0.55
        half = (corners[0] - corners[1]) / 2 * 0.8
        length = (front - back) * roof / 2
        block = np.array([mid + length + half, mid + length - half, mid - length - half, mid - length + half])
        cv2.fillConvexPoly(img, np.round(block).astype(np.int32), tuple(int(c * 0.55) for c in colour), cv2.LINE_AA)


def render_junction(cfg: JunctionConfig, out_video: Path | None) -> JunctionScene:
    """Render to ``out_video`` (mp4v; None = truth only) and return the scene with its truth."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(2)[1])
    background = draw_background(cfg, rng)
    camera = make_camera(cfg.width, cfg.height, cfg.fps, 0.15, 3.0, rng)
    writer = None
    if out_video is not None:
        Path(out_video).parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(out_video), cv2.VideoWriter_fourcc(*"mp4v"), cfg.fps, (cfg.width, cfg.height))
        if not writer.isOpened():
            raise OSError(f"cannot open a video writer for {out_video}")
    frames, corners_all = [], []
    classes: dict[int, int] = {}
    planned: dict[int, tuple[str, str | None]] = {}
    try:
        for fb, corners, classes in iter_junction(cfg, planned):  # noqa: B007 - the last value is used below
            frames.append(fb)
            corners_all.append(corners)
            if writer is None:
                continue
            img = background.copy()
            for vid, cid in zip(fb.ids.tolist(), fb.class_ids.tolist()):
                draw_vehicle(img, corners[vid], cid, _COLOURS[vid % len(_COLOURS)])
            writer.write(camera.apply(img, fb.index))
    finally:
        if writer is not None:
            writer.release()
    return JunctionScene(cfg, tuple(frames), dict(classes), tuple(corners_all), planned)

"""Static scenery, occluders and camera effects of the synthetic scene. numpy + cv2.

Everything costly is drawn once per scene (background, occluder layer, a bank of noise images, a
cloud-shadow map); each frame only copies, pastes sprites and applies a few saturating uint8 ops,
so a 30 s 640x360 scene renders in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgetally.demo.sprites import Sprite

_NOISE_BANK = 6
_NOISE_MARGIN = 32
_NOISE_CYCLE = 4096


def _textured(h: int, w: int, colour: tuple[int, int, int], amount: float, rng: np.random.Generator) -> np.ndarray:
    grain = rng.normal(0.0, amount, size=(h, w, 1)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (3, 3), 0)[..., None]
    base = np.asarray(colour, np.float32)[None, None, :]
    return np.clip(base * (1.0 + grain), 0, 255).astype(np.uint8)


def _dashes(img: np.ndarray, y: int, colour: tuple[int, int, int], thick: int, dash: int, gap: int) -> None:
    for x in range(0, img.shape[1], dash + gap):
        cv2.line(img, (x, y), (x + dash, y), colour, thick, cv2.LINE_AA)


def draw_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8: far verge with buildings, sidewalks, bike lanes, a six-lane road."""
    h, w = height, width
    img = _textured(h, w, (70, 95, 80), 0.12, rng)  # verge
    for _ in range(9):  # building fronts / hedges on the far side
        x0 = int(rng.integers(0, w - 40))
        bw, bh = int(rng.integers(40, 120)), int(rng.integers(int(0.1 * h), int(0.24 * h)))
        colour = tuple(int(c) for c in rng.integers(60, 200, size=3))
        cv2.rectangle(img, (x0, int(0.25 * h) - bh), (x0 + bw, int(0.25 * h)), colour, -1)
    bands = [  # (top, bottom, colour) as fractions of the height
        (0.25, 0.275, (165, 170, 172)),
        (0.275, 0.315, (85, 95, 150)),
        (0.315, 0.86, (78, 80, 82)),
        (0.86, 0.955, (85, 95, 150)),
        (0.955, 1.0, (165, 170, 172)),
    ]
    for top, bottom, colour in bands:
        y0, y1 = int(top * h), int(bottom * h)
        img[y0:y1] = _textured(y1 - y0, w, colour, 0.06, rng)
    for y in (0.315, 0.86):
        cv2.line(img, (0, int(y * h)), (w, int(y * h)), (220, 220, 220), 2, cv2.LINE_AA)
    for y in (0.475, 0.74):
        _dashes(img, int(y * h), (210, 210, 210), 2, 28, 22)
    for dy in (-2, 2):
        cv2.line(img, (0, int(0.6 * h) + dy), (w, int(0.6 * h) + dy), (40, 200, 230), 2, cv2.LINE_AA)
    return img


def draw_occluders(width: int, height: int, rng: np.random.Generator) -> list[tuple[Sprite, int, int]]:
    """(sprite, x, y) parts: a lamp pole on the left, a tree on the near right, both in front of
    the road. Kept away from the middle, where the demo's counting line is."""
    cv_img = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    px = int(0.18 * width)
    for target, value in ((cv_img, (95, 100, 105)), (mask, 255)):
        cv2.line(target, (px, height), (px, int(0.38 * height)), value, max(3, width // 110))
        cv2.line(target, (px, int(0.38 * height)), (px + width // 14, int(0.36 * height)), value, 3)
    tx, crown_y = int(0.83 * width), int(0.6 * height)
    for target, value in ((cv_img, (30, 55, 60)), (mask, 255)):
        cv2.line(target, (tx, height), (tx, crown_y), value, max(5, width // 70))
    for _ in range(14):  # a crown of overlapping leafy blobs
        cx = tx + int(rng.normal(0, 0.04 * width))
        cy = crown_y + int(rng.normal(-0.02 * height, 0.05 * height))
        r = int(rng.uniform(0.035, 0.06) * width)
        green = (int(rng.integers(20, 50)), int(rng.integers(80, 130)), int(rng.integers(30, 60)))
        cv2.circle(cv_img, (cx, cy), r, green, -1, cv2.LINE_AA)
        cv2.circle(mask, (cx, cy), r, 255, -1)
    leaves = _textured(height, width, (255, 255, 255), 0.15, rng).astype(np.float32) / 255.0
    cv_img = np.clip(cv_img * leaves, 0, 255).astype(np.uint8)
    return _parts(cv_img, mask)


def _parts(image: np.ndarray, mask: np.ndarray) -> list[tuple[Sprite, int, int]]:
    """Split a full-frame layer into tight sprites per connected part (pasting is per pixel)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    parts = []
    for k in range(1, n):
        x, y, w, h = (int(v) for v in stats[k, :4])
        sub = mask[y : y + h, x : x + w] > 0
        parts.append((Sprite(image[y : y + h, x : x + w].copy(), sub), x, y))
    return parts


@dataclass(frozen=True)
class CameraModel:
    """Lighting and sensor noise over time, all precomputed from one random stream."""

    fps: float
    lighting: float  # 0 = constant light: no gain change, tint or cloud shadow
    noise_sigma: float
    period_s: float
    phase: float
    tint_phase: np.ndarray  # (3,) per-channel phase of the colour-temperature drift
    cloud: np.ndarray  # (H, 2W, 3) uint8 multiplicative shadow map, 255 = no shadow
    cloud_speed: float  # px per frame
    noise_pos: np.ndarray  # (K, H + m, W + m, 3) uint8
    noise_neg: np.ndarray
    offsets: np.ndarray  # (cycle, 3) int: bank index, dx, dy; frame i uses row i % cycle

    def apply(self, frame: np.ndarray, index: int) -> np.ndarray:
        """Lights and noises one rendered (H, W, 3) uint8 frame in place; returns it."""
        h, w = frame.shape[:2]
        if self.lighting > 0:
            self._light(frame, index)
        if self.noise_sigma > 0:
            k, dx, dy = (int(v) for v in self.offsets[index % len(self.offsets)])
            cv2.add(frame, self.noise_pos[k, dy : dy + h, dx : dx + w], dst=frame)
            cv2.subtract(frame, self.noise_neg[k, dy : dy + h, dx : dx + w], dst=frame)
        return frame

    def _light(self, frame: np.ndarray, index: int) -> None:
        w = frame.shape[1]
        t = index / self.fps
        gain = 1.0 + self.lighting * np.sin(2 * np.pi * t / self.period_s + self.phase)
        tint = 1.0 + 0.06 * np.sin(2 * np.pi * t / (0.7 * self.period_s) + self.tint_phase)
        scale = tuple(float(v) for v in gain * tint) + (1.0,)
        cv2.multiply(frame, scale, dst=frame)
        x0 = int(index * self.cloud_speed) % w
        cv2.multiply(frame, self.cloud[:, x0 : x0 + w], dst=frame, scale=1.0 / 255.0)


def make_camera(
    width: int, height: int, fps: float, lighting: float, noise_sigma: float, rng: np.random.Generator
) -> CameraModel:
    m = _NOISE_MARGIN
    noise = rng.normal(0.0, noise_sigma, size=(_NOISE_BANK, height + m, width + m, 3)).astype(np.float32)
    cloud = np.zeros((height, 2 * width), np.float32)
    for _ in range(5):
        cx, cy = int(rng.integers(0, 2 * width)), int(rng.integers(0, height))
        axes = (int(rng.uniform(0.15, 0.35) * width), int(rng.uniform(0.15, 0.4) * height))
        cv2.ellipse(cloud, (cx, cy), axes, 0, 0, 360, float(rng.uniform(0.15, 0.3)), -1)
    cloud = cv2.GaussianBlur(cloud, (0, 0), 0.08 * width)
    cloud[:, width:] = cloud[:, :width]  # wrap around seamlessly while scrolling
    shadow = np.clip(255.0 * (1.0 - cloud), 0, 255).astype(np.uint8)
    # A fixed-length cycle of (bank, dx, dy), so the random stream (and so every frame) does not
    # depend on the scene's length: a 20 s scene is the first 20 s of the 30 s one.
    cycle = _NOISE_CYCLE
    offsets = np.stack([rng.integers(0, _NOISE_BANK, cycle), rng.integers(0, m, cycle), rng.integers(0, m, cycle)], 1)
    return CameraModel(
        fps=fps,
        lighting=lighting,
        noise_sigma=noise_sigma,
        period_s=float(rng.uniform(18, 36)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        tint_phase=rng.uniform(0, 2 * np.pi, 3),
        cloud=np.repeat(shadow[..., None], 3, axis=2),
        cloud_speed=float(rng.uniform(0.5, 1.5)),
        noise_pos=np.clip(noise, 0, 255).astype(np.uint8),
        noise_neg=np.clip(-noise, 0, 255).astype(np.uint8),
        offsets=offsets.astype(np.int64),
    )


def paste(canvas: np.ndarray, labels: np.ndarray | None, sprite: Sprite, x: int, y: int, label: int) -> None:
    """Draw ``sprite`` with its top-left at (x, y), clipped to the canvas; mark its pixels ``label``."""
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + sprite.width, w), min(y + sprite.height, h)
    if x1 <= x0 or y1 <= y0:
        return
    m = sprite.mask[y0 - y : y1 - y, x0 - x : x1 - x]
    np.copyto(canvas[y0:y1, x0:x1], sprite.image[y0 - y : y1 - y, x0 - x : x1 - x], where=m[..., None])
    if labels is not None:
        labels[y0:y1, x0:x1][m] = label

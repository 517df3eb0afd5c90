"""Augmentation for a few dozen frames of one fixed camera: geometry and light, nothing exotic.

A fixed camera sees the same background at the same scale, so the augmentations are mild: a random
zoom (0.75-1.3x) and shift (up to 15 % of the frame) of the whole image, horizontal flips (traffic in
the other direction), optional vertical flips (overhead views: conveyors, drones), and per-image
brightness / contrast / colour cast (the light changes over a day). A box mostly pushed out of the
frame is dropped; the rest are clipped to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114
MIN_KEPT_AREA = 0.4  # share of a box that must stay in the frame for it to remain a target


@dataclass(frozen=True)
class AugmentConfig:
    zoom: tuple[float, float] = (0.75, 1.3)
    shift: float = 0.15
    hflip: bool = True
    vflip: bool = False
    light: float = 0.35  # +- brightness gain
    contrast: float = 0.25
    cast: float = 0.08  # +- per-channel gain


def _affine(
    image: np.ndarray, boxes: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    s = float(np.exp(rng.uniform(np.log(cfg.zoom[0]), np.log(cfg.zoom[1]))))
    tx = w / 2 * (1 - s) + rng.uniform(-cfg.shift, cfg.shift) * w
    ty = h / 2 * (1 - s) + rng.uniform(-cfg.shift, cfg.shift) * h
    m = np.array([[s, 0, tx], [0, s, ty]], np.float32)
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(PAD_VALUE,) * 3)
    moved = boxes * s + np.array([tx, ty, tx, ty], np.float32)
    clipped = np.clip(moved, 0, [w, h, w, h])

    def area(b):
        return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)

    keep = area(clipped) >= MIN_KEPT_AREA * np.maximum(area(moved), 1e-6)
    keep &= (clipped[:, 2] - clipped[:, 0] >= 2) & (clipped[:, 3] - clipped[:, 1] >= 2)
    return out, clipped.astype(np.float32), keep


def augment(
    image: np.ndarray, boxes: np.ndarray, class_ids: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One random variant of (image (H, W, 3) uint8, boxes (N, 4) xyxy px, class_ids (N,))."""
    image, boxes, keep = _affine(image, boxes, cfg, rng)
    boxes, class_ids = boxes[keep], class_ids[keep]
    h, w = image.shape[:2]
    if cfg.hflip and rng.random() < 0.5:
        image = image[:, ::-1]
        boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
    if cfg.vflip and rng.random() < 0.5:
        image = image[::-1]
        boxes = np.stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]], 1)
    gain = 1.0 + rng.uniform(-cfg.light, cfg.light)
    contrast = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
    cast = 1.0 + rng.uniform(-cfg.cast, cfg.cast, size=3)
    img = image.astype(np.float32)
    mean = img.mean()
    img = ((img - mean) * contrast + mean) * gain * cast
    return np.clip(img, 0, 255).astype(np.uint8), boxes.astype(np.float32).reshape(-1, 4), class_ids

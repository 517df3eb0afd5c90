"""Training/eval data for the demo detector: generated scenes, letterboxed exactly as the runner does.

Frames are read back from the rendered mp4 (so the detector learns through the same compression
the runner sees) and letterboxed by ``edgetally.preprocess.Preprocessor`` (the runner's own code).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgetally.artifact import InputSpec
from edgetally.demo.scene import SceneConfig, render_scene
from edgetally.preprocess import Preprocessor

# Ground truth hidden more than this is not a positive and not a negative ("ignore").
MIN_VISIBILITY = 0.35
MIN_SIDE_PX = 3.0  # in input pixels


@dataclass(frozen=True)
class Sample:
    """One letterboxed frame: image (3, H, W) uint8 BGR; boxes (G, 4) xyxy in INPUT pixels;
    class_ids (G,); ignore (G,) bool (too occluded or too small to demand a detection)."""

    image: np.ndarray
    boxes: np.ndarray
    class_ids: np.ndarray
    ignore: np.ndarray
    frame_xyxy: np.ndarray  # (G, 4) the same boxes in frame pixels (for evaluation)


def preprocessor(input_hw: tuple[int, int]) -> Preprocessor:
    return Preprocessor(InputSpec(name="images", shape=[1, 3, input_hw[0], input_hw[1]]))


def read_frames(video: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def scene_samples(
    cfg: SceneConfig, input_hw: tuple[int, int], every: int = 1, workdir: Path | None = None
) -> list[Sample]:
    """Render ``cfg``, decode it, keep every ``every``-th frame as a Sample."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        video = Path(tmp) / "scene.mp4"
        truth = render_scene(cfg, video)
        frames = read_frames(video)
    pre = preprocessor(input_hw)
    samples = []
    for fb, frame in list(zip(truth.frames, frames))[::every]:
        tensor, box = pre(frame)
        xyxy = fb.xyxy.astype(np.float32)
        inp = xyxy * np.float32(box.scale_x)
        inp[:, [0, 2]] += box.pad_x
        inp[:, [1, 3]] += box.pad_y
        small = np.minimum(inp[:, 2] - inp[:, 0], inp[:, 3] - inp[:, 1]) < MIN_SIDE_PX
        ignore = (fb.visibility < MIN_VISIBILITY) | small
        samples.append(Sample(tensor[0].astype(np.uint8), inp, fb.class_ids.copy(), ignore, xyxy))
    return samples


def training_configs(seeds: range, seconds: float) -> list[SceneConfig]:
    """Varied traffic density, noise and lighting per scene (deterministic per seed)."""
    configs = []
    for seed in seeds:
        rng = np.random.default_rng(seed + 123_457)
        configs.append(
            SceneConfig(
                seconds=seconds,
                seed=seed,
                density=float(rng.uniform(0.8, 1.8)),
                noise_sigma=float(rng.uniform(2.0, 7.0)),
                lighting=float(rng.uniform(0.15, 0.4)),
            )
        )
    return configs

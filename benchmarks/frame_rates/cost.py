"""Propagation cost per camera frame at 20 and 100 objects on 640x360, one thread.

Thread CPU time (``time.thread_time``), so another process on the same core does not inflate
it; the median over consecutive frames of traffic_road.mp4 (real texture and motion) with
boxes of car sizes spread over the frame. Two figures: the flow alone
(``FlowPropagator.step``) and the whole frame without detection (``MotionTracker.step``:
flow + the tracker's Kalman update + output).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from benchmarks.frame_rates.detections import iter_frames
from edgetally.structures import Detections

OBJECTS = (20, 100)


def _boxes(n: int, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    wh = rng.uniform([30, 20], [90, 60], (n, 2))
    xy = rng.uniform([0, 0], [width - 90, height - 60], (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def measure(video: Path, frames: int = 120) -> list[dict[str, float]]:
    from edgetally.motion import FlowPropagator
    from edgetally.motion.stage import MotionTracker
    from edgetally.tracking import Tracker

    cv2.setNumThreads(1)
    images = [f for _, f in zip(range(frames), iter_frames(video))]
    h, w = images[0].shape[:2]
    rows = []
    for n in OBJECTS:
        boxes = _boxes(n, np.random.default_rng(n), w, h)
        prop = FlowPropagator()
        prop.observe(images[0])
        flow = [_cpu_ms(prop.step, img, boxes) for img in images[1:]]
        stage = MotionTracker(Tracker(), FlowPropagator())
        dets = Detections(boxes, np.full(n, 0.9, np.float32), np.zeros(n, np.int64))
        for i in range(2):  # two detections confirm every track
            stage.step(images[i], dets, i / 30.0)
        whole = [_cpu_ms(stage.step, images[i], None, i / 30.0) for i in range(2, len(images))]
        rows.append(
            {
                "objects": n,
                "size": f"{w}x{h}",
                "flow_ms_median": float(np.median(flow)),
                "flow_ms_p90": float(np.percentile(flow, 90)),
                "frame_ms_median": float(np.median(whole)),
                "frame_ms_p90": float(np.percentile(whole, 90)),
            }
        )
    return rows


def _cpu_ms(fn: Callable[..., object], *args: object) -> float:
    t0 = time.thread_time()
    fn(*args)
    return 1000.0 * (time.thread_time() - t0)

"""Tracks at the camera's rate: the detector's frames update the tracker, the others move the
tracks by optical flow. The one call the pipeline makes per frame, whatever the rate split said.

    stage = MotionTracker(Tracker(config), FlowPropagator())
    for frame in source:
        detections = detector(frame.image) if split.decide(frame.timestamp) else None
        tracks = stage.step(frame.image, detections, frame.timestamp)
        events = [e for c in counters for e in c.update(tracks, frame.index, frame.timestamp)]
"""

from __future__ import annotations

import time

import numpy as np

from edgetally.motion.flow import FlowPropagator
from edgetally.structures import Detections, Tracks
from edgetally.tracking import Tracker


class MotionTracker:
    """A tracker plus the flow that carries its tracks between detections. One per camera."""

    def __init__(self, tracker: Tracker, propagator: FlowPropagator | None = None) -> None:
        self.tracker = tracker
        self.propagator = propagator or FlowPropagator()
        self.last_flow_ms = 0.0  # time of the last propagation (0 on detection frames)
        self.last_moved = 0  # tracks the flow moved on the last frame (ok boxes)

    def step(self, image: np.ndarray, detections: Detections | None, timestamp: float) -> Tracks:
        """One camera frame. ``detections``: the detector's output for this very frame, or None
        when it did not run on it. Returns the tracks to hand to the counters."""
        if detections is not None:
            tracks = self.tracker.update(detections, timestamp)
            self.propagator.observe(image)  # the next propagation starts from this frame
            self.last_flow_ms, self.last_moved = 0.0, 0
            return tracks
        t0 = time.perf_counter()
        ids, boxes = self.tracker.motion_targets()
        moved, ok = self.propagator.step(image, boxes)
        self.last_flow_ms = 1000.0 * (time.perf_counter() - t0)
        self.last_moved = int(ok.sum())
        return self.tracker.propagate(ids[ok], moved[ok], timestamp)

    def reset(self) -> None:
        """A source restart: the next propagation must not compare frames across the gap."""
        self.propagator.reset()

"""Motion between detections: sparse optical flow for track boxes (cv2), the detect-or-propagate
rate split (pure Python), and the per-frame stage that ties them to the tracker.

The names load lazily: settings validation imports ``edgetally.motion.rate`` without cv2.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "FlowConfig": "edgetally.motion.flow",
    "FlowPropagator": "edgetally.motion.flow",
    "MotionTracker": "edgetally.motion.stage",
    "RatePlan": "edgetally.motion.rate",
    "RateSplit": "edgetally.motion.rate",
    "RateStats": "edgetally.motion.rate",
    "plan_rate": "edgetally.motion.rate",
}
__all__ = ["FlowConfig", "FlowPropagator", "MotionTracker", "RatePlan", "RateSplit", "RateStats", "plan_rate"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgetally.motion' has no attribute {name!r}")

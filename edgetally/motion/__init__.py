"""Motion between detections: sparse optical flow for track boxes (cv2), the detect-or-propagate
rate split, and the per-frame stage that ties them to the tracker."""

from __future__ import annotations

from edgetally.motion.flow import FlowConfig, FlowPropagator

__all__ = ["FlowConfig", "FlowPropagator"]

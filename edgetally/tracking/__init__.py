"""Tracking-by-detection: Kalman box filter, IoU assignment, ByteTrack-class tracker. numpy only."""

from __future__ import annotations

from edgetally.tracking.kalman import KalmanBoxFilter, KalmanNoise
from edgetally.tracking.tracker import Tracker, TrackerConfig

__all__ = ["KalmanBoxFilter", "KalmanNoise", "Tracker", "TrackerConfig"]

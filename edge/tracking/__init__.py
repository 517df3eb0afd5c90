"""Tracking-by-detection: Kalman box filter, IoU assignment, ByteTrack-class tracker. numpy only."""

from __future__ import annotations

from edge.tracking.kalman import KalmanBoxFilter, KalmanNoise
from edge.tracking.tracker import Tracker, TrackerConfig

__all__ = ["KalmanBoxFilter", "KalmanNoise", "Tracker", "TrackerConfig"]

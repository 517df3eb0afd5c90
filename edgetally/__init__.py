"""edgetally: count objects crossing lines and zones, from a camera, on an edge device.

    from edgetally import Detector, LineCounter, Tracker, open_source

    tracker = Tracker()
    detector = Detector.from_artifact("artifacts/demo", low_score=tracker.config.low_score)
    line = LineCounter("L", (320, 0), (320, 360), detector.labels)
    for frame in open_source("scene.mp4"):
        tracks = tracker.update(detector(frame.image, with_low=True), frame.timestamp)
        for event in line.update(tracks, frame.index, frame.timestamp):
            print(event)

The names below load lazily: ``import edgetally`` stays cheap and never imports a runtime,
cv2 or the converter stack (torch, onnx, ...) until they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Frame": "edgetally.structures",
    "Detections": "edgetally.structures",
    "Tracks": "edgetally.structures",
    "CountEvent": "edgetally.structures",
    "FrameResult": "edgetally.structures",
    "Detector": "edgetally.detector",
    "Tracker": "edgetally.tracking",
    "TrackerConfig": "edgetally.tracking",
    "LineCounter": "edgetally.counting",
    "ZoneCounter": "edgetally.counting",
    "open_source": "edgetally.capture",
    "Pipeline": "edgetally.pipeline",
    "RunSummary": "edgetally.pipeline",
    "build_pipeline": "edgetally.build",
    "RunSettings": "edgetally.config",
    "load_config": "edgetally.config",
    "Hook": "edgetally.hooks",
    "Sink": "edgetally.hooks",
    "RunContext": "edgetally.hooks",
    "JsonlEventSink": "edgetally.sinks.jsonl",
    "EdgeError": "edgetally.errors",
    "ConfigError": "edgetally.errors",
}

__all__ = [  # the names of _EXPORTS (tests/test_api.py checks they agree)
    "ConfigError",
    "CountEvent",
    "Detections",
    "Detector",
    "EdgeError",
    "Frame",
    "FrameResult",
    "Hook",
    "JsonlEventSink",
    "LineCounter",
    "Pipeline",
    "RunContext",
    "RunSettings",
    "RunSummary",
    "Sink",
    "Tracker",
    "TrackerConfig",
    "Tracks",
    "ZoneCounter",
    "__version__",
    "build_pipeline",
    "load_config",
    "open_source",
]

if TYPE_CHECKING:
    from edgetally.build import build_pipeline
    from edgetally.capture import open_source
    from edgetally.config import RunSettings, load_config
    from edgetally.counting import LineCounter, ZoneCounter
    from edgetally.detector import Detector
    from edgetally.errors import ConfigError, EdgeError
    from edgetally.hooks import Hook, RunContext, Sink
    from edgetally.pipeline import Pipeline, RunSummary
    from edgetally.sinks.jsonl import JsonlEventSink
    from edgetally.structures import CountEvent, Detections, Frame, FrameResult, Tracks
    from edgetally.tracking import Tracker, TrackerConfig


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edgetally' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__

"""Validated runner configuration (YAML or CLI flags)."""

from edgetally.config.geometry import geometry_warnings
from edgetally.config.loader import load_config, validate_file
from edgetally.config.models import (
    CaptureSettings,
    LineSettings,
    OutputSettings,
    RunSettings,
    ZoneSettings,
)

__all__ = [
    "CaptureSettings",
    "LineSettings",
    "OutputSettings",
    "RunSettings",
    "ZoneSettings",
    "geometry_warnings",
    "load_config",
    "validate_file",
]

"""Typed validation of the config blocks the runner keeps as plain dicts (``mqtt:``, ``tracker:``).

RunSettings stores them as dicts (the sinks and the tracker are built from them later), but a bad
key must fail validation with its path, like every other key: ``mqtt.qos: Input should be 0, 1
or 2`` at its line, not a traceback at start or a silently ignored setting. The validators below
check a block against its typed model and hand the dict back unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgetally.tracking.tracker import TrackerConfig

UnitFloat = Field(default=None, ge=0.0, le=1.0)
Iou = Field(default=None, gt=0.0, le=1.0)
Seconds = Field(default=None, ge=0.0, le=3600.0)


class TrackerSettings(BaseModel):
    """The ``tracker:`` block: overrides of TrackerConfig (tracking/tracker.py documents each)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    high_score: float | None = UnitFloat
    low_score: float | None = UnitFloat
    new_track_score: float | None = UnitFloat
    match_iou: float | None = Iou
    low_match_iou: float | None = Iou
    tentative_match_iou: float | None = Iou
    tentative_low_iou: float | None = Iou
    tentative_expand: float | None = Field(default=None, ge=0.0, le=10.0)
    min_hits: int | None = Field(default=None, ge=1, le=100)
    tentative_timeout_s: float | None = Seconds
    lost_expand_per_s: float | None = Field(default=None, ge=0.0, le=100.0)
    lost_expand_max: float | None = Field(default=None, ge=0.0, le=10.0)
    track_buffer_s: float | None = Seconds
    class_aware: bool | None = None
    duplicate_iou: float | None = Iou
    max_tracks: int | None = Field(default=None, ge=1, le=100_000)
    height_iou: bool | None = None
    flow_meas_weight: float | None = Field(default=None, gt=0.0, le=1.0)
    cross_class_iou: float | None = Iou
    slow_detect_fps: float | None = Field(default=None, ge=0.0, le=1000.0)
    slow_min_step: float | None = Field(default=None, ge=0.0, le=100.0)
    slow_new_track_score: float | None = UnitFloat
    slow_init_size_vel_factor: float | None = Field(default=None, gt=0.0, le=100.0)
    tentative_timeout_detections: float | None = Field(default=None, ge=0.0, le=100.0)
    jump_gate: float | None = Field(default=None, ge=0.0, le=1000.0)
    jump_size_ratio: float | None = Field(default=None, ge=1.0, le=100.0)
    jump_min_motion: float | None = Field(default=None, ge=0.0, le=100.0)
    jump_tentative_score: float | None = UnitFloat
    jump_max_unseen: float | None = Field(default=None, ge=0.0, le=100.0)
    birth_back_date: bool | None = None
    birth_guard: float | None = Field(default=None, ge=0.0, le=100.0)
    trace_s: float | None = Field(default=None, ge=0.0, le=10.0)
    trace_tolerance: float | None = Field(default=None, ge=0.0, le=10.0)

    @model_validator(mode="before")
    @classmethod
    def _ints_are_floats(cls, data: Any) -> Any:
        """YAML ``track_buffer_s: 2`` is an int; strict mode would refuse it for a float field."""
        if isinstance(data, dict):
            floats = {n for n, f in cls.model_fields.items() if f.annotation == (float | None)}
            return {k: float(v) if k in floats and type(v) is int else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> TrackerSettings:
        """Rules across keys (low_score <= high_score, ...): the tracker's own checks, run now."""
        values = {k: v for k, v in self.model_dump().items() if v is not None}
        try:
            TrackerConfig(**values)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return self


def overridable_tracker_fields() -> set[str]:
    """TrackerConfig fields a config may set (a test keeps TrackerSettings in step with it)."""
    return {f.name for f in dataclasses.fields(TrackerConfig)} - {"noise"}


def check_tracker(value: dict[str, Any]) -> dict[str, Any]:
    TrackerSettings.model_validate(value)
    return value


def check_mqtt(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        from edgetally.sinks.mqtt_settings import (
            MqttSettings,  # pydantic only (no paho)
        )

        MqttSettings.model_validate(value)
    return value

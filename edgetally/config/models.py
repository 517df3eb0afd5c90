"""The runner's settings: one pydantic model, shared by `edge run --config FILE` and the CLI flags.

No I/O in validators: paths are checked when the pipeline opens them, so validation stays pure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from edgetally.config.blocks import check_mqtt, check_tracker
from edgetally.errors import ConfigError
from edgetally.history.bins import DEFAULT_BIN, parse_bin
from edgetally.motion.rate import RatePlan, plan_rate

Anchor = Literal["bottom_center", "center", "top_center"]
MAX_POINTS = 1000  # per zone: each point costs every frame, for every track
MAX_COUNTERS = 100  # lines, and zones


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _points(value: Any, minimum: int) -> list[tuple[float, float]]:
    """Accept "x1,y1,x2,y2,...", [x1, y1, x2, y2, ...] or [[x1, y1], [x2, y2], ...]."""
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list of points")
    if value and all(isinstance(v, (list, tuple)) for v in value):
        flat = [c for p in value for c in p]
        if any(len(p) != 2 for p in value):
            raise ValueError("each point needs exactly 2 numbers [x, y]")
    else:
        flat = list(value)
    if len(flat) > 2 * MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points, got {len(flat) // 2}")
    try:
        nums = [float(v) for v in flat]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"coordinates must be numbers, got {str(value)[:80]!r}") from exc
    if not all(math.isfinite(n) for n in nums):
        raise ValueError("coordinates must be finite numbers (no NaN or infinity)")
    if len(nums) % 2 or len(nums) < 2 * minimum:
        raise ValueError(f"expected at least {minimum} points as x,y pairs, got {len(nums)} numbers")
    return [(nums[i], nums[i + 1]) for i in range(0, len(nums), 2)]


class LineSettings(_Strict):
    name: str = Field(min_length=1)
    points: list[tuple[float, float]] = Field(description="[[x1, y1], [x2, y2]]: directed segment, source pixels")
    anchor: Anchor = "bottom_center"

    @field_validator("points", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> list[tuple[float, float]]:
        pts = _points(value, 2)
        if len(pts) != 2:
            raise ValueError(f"a line has exactly 2 points, got {len(pts)}")
        if pts[0] == pts[1]:
            raise ValueError("the line's two points are the same")
        return pts


class ZoneSettings(_Strict):
    name: str = Field(min_length=1)
    polygon: list[tuple[float, float]] = Field(description="[[x, y], ...] at least 3 points, source pixels")
    anchor: Anchor = "bottom_center"

    @field_validator("polygon", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> list[tuple[float, float]]:
        pts = _points(value, 3)
        area = abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))) / 2
        if area < 1.0:
            raise ValueError(f"the zone encloses no area ({area:g} px²): its points are on one line or repeated")
        return pts


class CaptureSettings(_Strict):
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    fps: float | None = Field(
        default=None, gt=0, description="camera fps request; image folders: timeline fps (default 1)"
    )
    fourcc: str | None = Field(default=None, min_length=4, max_length=4, description="V4L2 pixel format, e.g. MJPG")
    watchdog_s: float = Field(default=20.0, gt=0, description="no new frame for this long: reconnect")
    reconnect_initial_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    max_reconnects: int | None = Field(default=None, ge=0, description="None = retry forever")
    isolate: bool = Field(default=True, description="decode in a child process: a codec crash costs a restart of it")
    max_bad_frames: int = Field(default=25, ge=0, description="files: undecodable frames in a row that are skipped")
    decoder_timeout_s: float = Field(
        default=30.0, gt=0, description="isolated: no frame for this long = a hung decoder"
    )
    decoder_max_rss_mb: int | None = Field(default=1024, gt=0, description="isolated: a bigger decoder is leaking")


class OutputSettings(_Strict):
    events: Path | None = None
    summary: Path | None = None
    detections: Path | None = None


class IntervalSettings(_Strict):
    """``intervals:``: counts per counter x class x direction in fixed, wall-clock-aligned bins, kept
    on the device (docs/intervals.md)."""

    enabled: bool = True
    bin: str = Field(default=DEFAULT_BIN, description="bin length dividing an hour: 1m, 5m, 15m (default), 60m, 30s")
    history: Path | None = Field(
        default=None,
        description="SQLite file; default $STATE_DIRECTORY or ~/.local/state/edgetally, history-<device>.sqlite",
    )
    sync: Literal["full", "normal"] = Field(default="full", description="full: every count survives a power cut")
    gap_s: float = Field(default=5.0, gt=0, description="no frame for longer than this: the time is not observed")
    retention_days: int = Field(default=400, ge=1)
    publish: bool = Field(default=True, description="publish closed bins over MQTT (when mqtt is configured)")

    @field_validator("bin", mode="before")
    @classmethod
    def _one_bin(cls, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ValueError(
                    f"one bin length only, got {list(value)}: bins of several lengths overlap (every count would be "
                    "in two of them); store the finest and let `edge report --bin 60m` add them up"
                )
            value = value[0]
        parse_bin(value)
        return str(value).strip()

    @property
    def bin_s(self) -> int:
        return parse_bin(self.bin)


class MovementSettings(_Strict):
    """One junction: its approaches are lines or zones; every track's first and last approach give
    its origin -> destination movement (docs/intervals.md)."""

    name: str = Field(min_length=1)
    approaches: list[str] = Field(min_length=2, description="names of lines/zones, one per junction arm")
    entry: Literal["in", "out"] = Field(default="in", description="the line direction that enters the junction")

    @field_validator("approaches")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        dupes = sorted({a for a in value if value.count(a) > 1})
        if dupes:
            raise ValueError(f"each approach once; repeated: {', '.join(dupes)}")
        return value


def _check_movements(movements: list[MovementSettings], info: ValidationInfo) -> list[MovementSettings]:
    """Every approach names a line or zone of this config; a movement's name is not a counter's."""
    if "lines" not in info.data or "zones" not in info.data:
        return movements  # the lines or zones themselves are invalid: that error says enough
    counters = [c.name for c in info.data["lines"]] + [z.name for z in info.data["zones"]]
    known = ", ".join(counters) or "none defined"
    errors: list[InitErrorDetails] = []
    for i, mv in enumerate(movements):
        if mv.name in counters:
            errors.append(_error((i, "name"), mv.name, f"movement name {mv.name!r} is already a line or zone name"))
        for j, approach in enumerate(mv.approaches):
            if approach not in counters:
                errors.append(
                    _error(
                        (i, "approaches", j),
                        approach,
                        f"unknown approach {approach!r}: not a line or zone of this config (known: {known})",
                    )
                )
    names = [m.name for m in movements]
    for i, name in enumerate(names):
        if names.index(name) != i:
            errors.append(_error((i, "name"), name, f"movement names must be unique; {name!r} repeats"))
    if errors:
        raise ValidationError.from_exception_data("movements", errors)
    return movements


def _error(loc: tuple[int | str, ...], value: Any, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("value_error", "{msg}", {"msg": message}), loc=loc, input=value)


class RunSettings(_Strict):
    """Everything `edge run` needs. YAML keys are these field names."""

    model: Path
    source: str
    device_id: str | None = None
    threads: int = Field(default=2, ge=1, le=64)
    lines: list[LineSettings] = Field(default_factory=list, max_length=MAX_COUNTERS)
    zones: list[ZoneSettings] = Field(default_factory=list, max_length=MAX_COUNTERS)
    classes: list[str] | None = Field(default=None, description="count only these class names")
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    max_detections: int | None = Field(default=None, ge=1)
    max_frames: int | None = Field(default=None, ge=1)
    detect_every: int | None = Field(
        default=None, description="the detector sees every k-th frame; optical flow carries the tracks over the others"
    )
    detect_fps: float | Literal["auto"] | None = Field(
        default=None, description="detections per second, or auto: as often as the detector keeps up (newest frame)"
    )
    tracker: dict[str, Any] = Field(default_factory=dict, description="TrackerConfig overrides (config/blocks.py)")
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    outputs: OutputSettings = Field(default_factory=OutputSettings)
    mqtt: dict[str, Any] | None = Field(default=None, description="MQTT sink settings (see docs/mqtt.md)")
    intervals: IntervalSettings = Field(default_factory=IntervalSettings)
    movements: list[MovementSettings] = Field(default_factory=list, description="junctions: origin -> destination")

    @field_validator("movements")
    @classmethod
    def _movements_known(cls, value: list[MovementSettings], info: ValidationInfo) -> list[MovementSettings]:
        return _check_movements(value, info)

    @field_validator("detect_every", "detect_fps", mode="before")
    @classmethod
    def _rate(cls, value: Any, info: ValidationInfo) -> Any:
        """One validation for config and flags: edgetally.motion.rate.plan_rate's."""
        if value is None:
            return None
        try:
            plan = plan_rate(**{str(info.field_name): value})
        except ConfigError as exc:
            raise ValueError(str(exc).partition(": ")[2] or str(exc)) from None
        if info.field_name == "detect_every":
            return plan.detect_every
        return "auto" if plan.auto else plan.detect_fps

    def rate_plan(self, source_fps: float | None = None, live: bool = False) -> RatePlan:
        """Which frames the detector sees; ConfigError when a detection rate exceeds ``source_fps``.
        Unset: every frame of a file; on a live camera, as often as the detector keeps up (auto), so
        a board that cannot detect every frame carries tracks by flow instead of dropping frames."""
        if live and self.detect_every is None and self.detect_fps is None:
            return RatePlan(auto=True)
        return plan_rate(self.detect_every, self.detect_fps, source_fps)

    @field_validator("classes", mode="before")
    @classmethod
    def _split_classes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [c.strip() for c in value.split(",") if c.strip()]
        return value

    # Kept as dicts (the sinks and the tracker are built from them) but typed: config/blocks.py.
    _tracker = field_validator("tracker")(check_tracker)
    _mqtt = field_validator("mqtt")(check_mqtt)

    @model_validator(mode="after")
    def _unique_names(self) -> RunSettings:
        names = [c.name for c in self.lines] + [z.name for z in self.zones]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"counter names must be unique; repeated: {', '.join(dupes)}")
        if self.detect_every is not None and self.detect_fps is not None:
            raise ValueError("detect_every and detect_fps: set one of them, not both")
        return self

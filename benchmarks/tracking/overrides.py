"""KEY=VALUE settings of the benchmark commands (--tracker-param / --ours-param, --counter-param,
--flow-param, --noise): parsed as Python literals, then checked against the settings they override,
so a typo or a value of the wrong kind is a usage error (exit 2), not a run that silently measured
something else ("height_iou=false" is the string 'false', which a bool field takes as true)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from typing import Any


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> dict; values are Python literals where they parse (0.3, 2, True),
    strings otherwise. ValueError without '='."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def check_overrides(option: str, values: dict[str, Any], defaults: dict[str, Any], what: str) -> None:
    """ValueError naming ``option`` and the key when an override is not one of ``defaults`` (the
    ``what`` settings) or not a value of its default's kind: True / False for a flag, a whole number
    for a count, a number for a float, a tuple of as many numbers, a string; a setting whose default
    is None takes anything."""
    for key, value in values.items():
        if key not in defaults:
            raise ValueError(f"{option} {key}: not a {what} field (one of {', '.join(sorted(defaults))})")
        default = defaults[key]
        if not _same_kind(value, default):
            like = "True or False" if isinstance(default, bool) else f"a value like {default!r}"
            raise ValueError(f"{option} {key}={value!r}: expected {like}")


def _same_kind(value: object, default: object) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return _is_number(value)
    if isinstance(default, tuple):
        return isinstance(value, tuple) and len(value) == len(default) and all(_is_number(v) for v in value)
    return isinstance(value, type(default))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def dataclass_defaults(cls: type) -> dict[str, Any]:
    """A dataclass's fields with their plain defaults (fields built by a factory are left out)."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def tracker_defaults(noise_prefix: bool) -> dict[str, Any]:
    """Our tracker's settings (TrackerConfig); with ``noise_prefix``, also its Kalman noise as
    "noise.KEY" (the frame-rate benchmark's --tracker-param)."""
    from edgetally.tracking import KalmanNoise, TrackerConfig

    out = dataclass_defaults(TrackerConfig)
    if noise_prefix:
        out.update({f"noise.{k}": v for k, v in dataclass_defaults(KalmanNoise).items()})
    return out


def counter_defaults() -> dict[str, Any]:
    """LineCounter's keyword settings (everything after the line and its labels)."""
    from edgetally.counting import LineCounter

    params = inspect.signature(LineCounter.__init__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

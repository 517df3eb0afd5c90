"""Validation of commands received on ``<prefix>/<device>/cmd/<name>``.

Pure functions: bytes in, either a validated command dict for the pipeline or an error string
out. Nothing here touches counts: a payload that does not validate changes nothing.

- ``cmd/reset``    ``{"counter": "<name>"}`` resets one counter, ``{}`` (or empty) resets all.
- ``cmd/snapshot`` ``{}``: re-publish every retained counter now.
- ``cmd/reload``   ``{}``: ask the runner to reload its configuration.
- ``cmd/config``   ``{"lines": [...], "zones": [...], "classes": [...]}``: change the counting geometry
  (any of the three keys; ``"classes": []`` counts every class). Only the shape is checked here;
  the device validates the resulting configuration like ``edge validate-config`` (config/edit.py).
Every command may carry ``"id"`` (string, <= 64 chars), echoed in the answer on ``cmd/result``.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_PAYLOAD_BYTES = 4096
MAX_CONFIG_BYTES = 65536  # a few dozen polygons


class _Cmd(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    id: str | None = Field(default=None, max_length=64)


class ResetCmd(_Cmd):
    counter: str | None = Field(default=None, min_length=1, max_length=256)


class SnapshotCmd(_Cmd):
    pass


class ReloadCmd(_Cmd):
    pass


class ConfigCmd(_Cmd):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
    lines: list[dict[str, Any]] | None = Field(default=None, max_length=64)
    zones: list[dict[str, Any]] | None = Field(default=None, max_length=64)
    classes: list[str] | None = Field(default=None, max_length=1000)


MODELS: dict[str, type[_Cmd]] = {"reset": ResetCmd, "snapshot": SnapshotCmd, "reload": ReloadCmd, "config": ConfigCmd}


@dataclass(frozen=True)
class Parsed:
    """``command`` is what the pipeline gets (``{"cmd": name, ...}``); ``error`` is set instead
    when the payload was refused. ``request_id`` is echoed back either way when it was readable."""

    name: str
    command: dict[str, object] | None
    error: str | None
    request_id: str | None = None


def _decode(payload: bytes, limit: int = MAX_PAYLOAD_BYTES) -> tuple[dict[str, Any] | None, str | None]:
    if len(payload) > limit:
        return None, f"payload too large: {len(payload)} bytes (max {limit})"
    if not payload.strip():
        return {}, None
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"payload is not UTF-8 JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"payload must be a JSON object, got {type(data).__name__}"
    return data, None


def _request_id(data: dict[str, Any] | None) -> str | None:
    rid = data.get("id") if data else None
    return rid if isinstance(rid, str) and len(rid) <= 64 else None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{loc}: {err.get('msg', 'invalid')}"


def parse_command(name: str, payload: bytes, known_counters: Collection[str]) -> Parsed:
    """Validate one command. ``known_counters``: names a reset may target."""
    model = MODELS.get(name)
    if model is None:
        return Parsed(name, None, f"unknown command {name!r}; expected one of {sorted(MODELS)}")
    data, error = _decode(payload, MAX_CONFIG_BYTES if model is ConfigCmd else MAX_PAYLOAD_BYTES)
    rid = _request_id(data)
    if data is None:
        return Parsed(name, None, error, rid)
    try:
        cmd = model.model_validate(data)
    except ValidationError as exc:
        return Parsed(name, None, _first_error(exc), rid)
    if isinstance(cmd, ResetCmd) and cmd.counter is not None and cmd.counter not in known_counters:
        return Parsed(name, None, f"counter: unknown counter {cmd.counter!r}; known: {sorted(known_counters)}", rid)
    out: dict[str, object] = {"cmd": name}
    if isinstance(cmd, ResetCmd):
        out["counter"] = cmd.counter
    if isinstance(cmd, ConfigCmd):
        if not cmd.model_fields_set - {"id"}:
            return Parsed(name, None, "payload: expected at least one of lines, zones, classes", rid)
        out.update({k: getattr(cmd, k) for k in ("lines", "zones", "classes") if k in cmd.model_fields_set})
    return Parsed(name, out, None, cmd.id)

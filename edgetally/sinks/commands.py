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
import logging
import time
from collections.abc import Callable, Collection
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
    except RecursionError:  # [[[[...]]]] within the size cap: the json module gives up, we answer
        return None, "payload is nested too deeply"
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


class Throttle:
    """At most ``rate`` per second on average, bursts of ``burst`` (a token bucket). ``allow()``
    says whether to act now; ``suppressed`` counts the refusals since the last allowed one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens, self._last = float(burst), clock()
        self.suppressed = 0

    def allow(self) -> bool:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count


class Refusals:
    """Refused commands are logged and answered, both throttled: a flood of bad commands must
    flood neither the journal (one warning a minute, with the count since) nor the broker
    (answers 5/s, bursts of 20)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.log = logger
        self._warn = Throttle(rate=1 / 60, burst=1)
        self._answer = Throttle(rate=5.0, burst=20)

    def refused(self, name: str, error: str) -> bool:
        """Log the refusal (maybe); True when it should be answered now."""
        if self._warn.allow():
            more = self._warn.take_suppressed()
            self.log.warning(
                "MQTT command %r refused: %s%s",
                name[:64],
                error[:200],
                f" ({more} more refused since the last warning)" if more else "",
            )
        return self._answer.allow()


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

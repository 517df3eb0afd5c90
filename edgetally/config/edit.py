"""Change a run config's counting geometry (lines, zones, classes) safely: validate, then swap.

Used by the ``cmd/config`` command (sinks/config_command.py), i.e. by the dashboard's line editor.
The proposed file is checked with the same validator as ``edge validate-config`` and, because only
the device knows them, against the camera frame (every point inside it) and the model's labels.
Nothing is written unless every check passes; then the new YAML replaces the old atomically
(temporary file, fsync, rename) and the old one is kept beside it as ``<name>.prev``. The YAML is
re-serialised, so comments in the edited file are not carried over (they stay in ``.prev``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgetally.config.loader import _node_line, read_yaml, validate_file
from edgetally.errors import ConfigError

EDITABLE = ("lines", "zones", "classes")


@dataclass(frozen=True)
class EditResult:
    ok: bool
    errors: list[str] = field(default_factory=list)
    path: Path | None = None
    previous: Path | None = None


def apply_edit(
    path: str | Path, change: dict[str, Any], frame_size: tuple[int, int] | None, labels: Sequence[str] | None
) -> EditResult:
    """Merge ``change`` (any of lines, zones, classes) into the YAML at ``path``; write it only if
    valid. ``frame_size`` (width, height): the source's frame; ``labels``: the model's classes."""
    path = Path(path)
    try:
        data, _ = read_yaml(path)
    except ConfigError as exc:
        return EditResult(False, [str(exc)])
    if not isinstance(data, dict):
        return EditResult(False, [f"{path}:1: (top level): expected a mapping of settings"])
    merged = _merge(data, change)
    text = yaml.safe_dump(merged, sort_keys=False, default_flow_style=None, allow_unicode=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".edit", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        errors = [e.replace(str(tmp), f"{path} (proposed)") for e in validate_file(tmp)]
        if not errors:
            errors = device_checks(merged, yaml.compose(text, Loader=yaml.SafeLoader), frame_size, labels, path)
        if errors:
            return EditResult(False, errors)
        previous = _keep_previous(path)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return EditResult(True, [], path, previous)
    finally:
        tmp.unlink(missing_ok=True)


def _merge(data: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = dict(data)
    for key in EDITABLE:
        if key not in change:
            continue
        value = change[key]
        if key == "classes" and not value:
            merged.pop("classes", None)  # no filter: count every class
        else:
            merged[key] = value
    return merged


def device_checks(
    data: dict[str, Any],
    root: yaml.Node | None,
    frame_size: tuple[int, int] | None,
    labels: Sequence[str] | None,
    path: Path,
) -> list[str]:
    """What only a running device can check: points inside the frame, classes the model knows."""
    errors: list[tuple[tuple[Any, ...], str]] = []
    if frame_size is None:
        errors.append(((), "no camera frame seen yet: cannot check the geometry against the frame; try again"))
    else:
        w, h = frame_size
        for kind, key in (("lines", "points"), ("zones", "polygon")):
            for i, item in enumerate(data.get(kind) or []):
                for j, (x, y) in enumerate(_pairs(item.get(key))):
                    if not (0 <= x <= w and 0 <= y <= h):
                        where = f"point ({x:g}, {y:g}) of {item.get('name')!r}"
                        errors.append(((kind, i, key, j), f"{where} is outside the {w}x{h} frame (0..{w}, 0..{h})"))
    if labels is not None:
        classes = data.get("classes") or []
        if isinstance(classes, str):
            classes = [c.strip() for c in classes.split(",") if c.strip()]
        for i, name in enumerate(classes):
            if name not in labels:
                errors.append((("classes", i), f"unknown class {name!r}; the model knows: {', '.join(labels)}"))
    out = []
    for loc, message in errors:
        line = _node_line(root, loc) if loc else None
        key = ".".join(str(p) for p in loc) or "(top level)"
        out.append(f"{path} (proposed){':' + str(line) if line else ''}: {key}: {message}")
    return out


def _pairs(points: Any) -> list[tuple[float, float]]:
    """Points as the config accepts them (validated already): "x,y,..", [x, y, ..] or [[x, y], ..]."""
    if isinstance(points, str):
        points = [float(v) for v in points.replace(" ", "").split(",") if v]
    if points and all(isinstance(p, (list, tuple)) for p in points):
        return [(float(p[0]), float(p[1])) for p in points]
    flat = [float(v) for v in points or []]
    return list(zip(flat[0::2], flat[1::2]))


def _keep_previous(path: Path) -> Path | None:
    """Copy the current file to ``<name>.prev`` (atomically too: a crash leaves the old .prev)."""
    if not path.is_file():
        return None
    prev = path.with_name(path.name + ".prev")
    tmp = prev.with_name(prev.name + ".tmp")
    tmp.write_bytes(path.read_bytes())
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, prev)
    return prev


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore_previous(path: str | Path) -> bool:
    """Put ``<name>.prev`` back (a reload of the new file failed after all)."""
    path = Path(path)
    prev = path.with_name(path.name + ".prev")
    if not prev.is_file():
        return False
    tmp = path.with_name(path.name + ".restore")
    tmp.write_bytes(prev.read_bytes())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return True

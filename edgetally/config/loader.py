"""YAML loading with errors that name the file, the line and the key path.

PyYAML's composed node tree keeps a line number for every key; pydantic's error locations are
key paths. Walking one with the other turns "lines.0.points: ..." into "cfg.yaml:7: lines.0.points: ...".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from edgetally.config.models import RunSettings
from edgetally.errors import ConfigError


def _node_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node along ``loc`` that exists in the YAML tree."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def format_errors(path: Path, exc: ValidationError, root: yaml.Node | None) -> list[str]:
    """One ``file:line: key.path: message`` string per validation error."""
    messages = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _node_line(root, loc)
        where = f"{path}:{line}" if line is not None else str(path)
        messages.append(f"{where}: {key}: {err['msg']}")
    return messages


MAX_CONFIG_BYTES = 1 << 20  # a device config is a few KB; a 19 MB one took 5 minutes and 3.7 GB


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: config is {size / 1e6:.1f} MB; at most {MAX_CONFIG_BYTES // 1024} KB is read "
                "(a device config is a few KB: is this the right file?)"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file as UTF-8"
        ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: YAML syntax error: {problem}") from exc
    return ({} if data is None else data), root


def validate_file(path: str | Path, model: type[BaseModel] = RunSettings, check_model: bool = False) -> list[str]:
    """Every error in a config file as ``file:line: key: message`` (empty list = valid).

    ``check_model``: also require the ``model`` artifact directory to exist on this machine (not
    for a config written here for another box, such as a bundle's).
    """
    path = Path(path)
    try:
        data, root = read_yaml(path)
    except ConfigError as exc:
        return [str(exc)]
    if not isinstance(data, dict):
        return [f"{path}:1: (top level): expected a mapping of settings, got {type(data).__name__}"]
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return format_errors(path, exc, root)
    return _missing_model(path, data, root) if check_model else []


def _missing_model(path: Path, data: dict[str, Any], root: yaml.Node | None) -> list[str]:
    """The ``model`` key's error when it names no artifact directory (resolved like load_config does)."""
    artifact = _resolve(path.parent, data["model"])
    if (artifact / "manifest.json").is_file():
        return []
    why = "no manifest.json in it" if artifact.is_dir() else "no such directory"
    return [
        f"{path}:{_node_line(root, ('model',))}: model: {artifact} is not an artifact directory ({why}); "
        "make one with `edge convert`"
    ]


def _resolve(base: Path, value: Any) -> Path:
    """A path from the config file, relative to the file's folder."""
    given = Path(str(value)).expanduser()
    return given if given.is_absolute() else base / given


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunSettings:
    """Load and validate a YAML run config; ``overrides`` (from CLI flags) win over the file.

    Relative paths in the file (model, outputs) are resolved against the file's folder.
    """
    path = Path(path)
    errors = validate_file(path)
    if errors:
        raise ConfigError("\n".join(errors))
    data, _ = read_yaml(path)
    if "model" in data:
        data["model"] = str(_resolve(path.parent, data["model"]))
    merged = {**data, **(overrides or {})}
    try:
        return RunSettings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError("\n".join(format_errors(path, exc, None))) from exc

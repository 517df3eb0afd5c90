"""Class names for an artifact: a built-in list by name, or a .txt / .yaml file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgetally.errors import ConversionError

# Built-in label sets shipped in edgetally/data (so a board can show names without the converter).
BUILTIN = {"coco80": "coco80.txt"}


def load_labels(spec: str | Path) -> list[str]:
    """``coco80`` -> the built-in COCO-80 names; otherwise a path to a .txt (one name per line)
    or .yaml/.yml file (``names:`` as a list or an index -> name mapping, or a bare list/mapping)."""
    if isinstance(spec, str) and spec in BUILTIN:
        text = resources.files("edgetally").joinpath("data", BUILTIN[spec]).read_text(encoding="utf-8")
        return _from_lines(text)
    path = Path(spec)
    if not path.is_file():
        known = ", ".join(sorted(BUILTIN))
        raise ConversionError(f"labels: {path}: no such file (and not a built-in name: {known})")
    text = path.read_text(encoding="utf-8")
    names = _from_yaml(path, text) if path.suffix.lower() in (".yaml", ".yml") else _from_lines(text)
    if not names:
        raise ConversionError(f"labels: {path}: no class names found")
    return names


def _from_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _from_yaml(path: Path, text: str) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConversionError(f"labels: {path}: not valid YAML: {exc}") from exc
    if isinstance(data, dict) and "names" in data:
        data = data["names"]
    if isinstance(data, list):
        return [str(name) for name in data]
    if isinstance(data, dict):
        try:
            indices = sorted(int(k) for k in data)
        except (TypeError, ValueError) as exc:
            raise ConversionError(f"labels: {path}: 'names' keys must be class indices 0..n-1") from exc
        if indices != list(range(len(indices))):
            raise ConversionError(f"labels: {path}: class indices must be 0..{len(indices) - 1} without gaps")
        return [str(data[k]) for k in sorted(data, key=int)]
    raise ConversionError(f"labels: {path}: expected a list of names or a 'names:' mapping")

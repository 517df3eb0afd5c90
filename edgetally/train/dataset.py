"""A YOLO-format dataset (as `edge label` exports it), read and checked before any training starts.

Layout: ``data.yaml`` (``names``, ``train``, ``val`` relative to the dataset) or ``classes.txt``
with ``images/{train,val}`` and ``labels/{train,val}``; one ``cls cx cy w h`` line (normalised) per
box; an image without a label file is a background frame. Every problem is reported at once, as
``file:line: what``, and raises DatasetError (exit 2): training on a broken dataset wastes the
time budget and hides the mistake. Nothing here writes into the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgetally.errors import ConfigError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# A box may stick out of the image by this much (normalised) before it counts as wrong: rounding in
# other tools' exports; it is clipped to the image.
EDGE_TOLERANCE = 0.01


class DatasetError(ConfigError):
    """The dataset is empty, inconsistent or has labels that cannot be right (exit 2)."""


@dataclass(frozen=True)
class Item:
    """One labelled image: image (H, W, 3) uint8 BGR; boxes (N, 4) xyxy pixels; class_ids (N,)."""

    path: Path
    image: np.ndarray
    boxes: np.ndarray
    class_ids: np.ndarray


@dataclass(frozen=True)
class Dataset:
    root: Path
    classes: tuple[str, ...]
    train: tuple[Item, ...]
    val: tuple[Item, ...]

    def summary(self) -> str:
        boxes = sum(len(i.boxes) for i in self.train + self.val)
        return (
            f"{len(self.classes)} classes ({', '.join(self.classes)}), {len(self.train)} train + "
            f"{len(self.val)} val images, {boxes} boxes"
        )


def _read_names(root: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    """Class names and split folders from data.yaml (preferred) or classes.txt."""
    yaml_path = root / "data.yaml"
    splits = {"train": "images/train", "val": "images/val"}
    if yaml_path.is_file():
        import yaml

        try:
            data = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise DatasetError(f"{yaml_path}: not valid YAML: {exc}") from exc
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names, key=int)]
        if not isinstance(names, list) or not names:
            raise DatasetError(f"{yaml_path}: 'names' must be a non-empty list of class names")
        splits.update({k: str(data[k]) for k in ("train", "val") if isinstance(data.get(k), str)})
        return tuple(str(n) for n in names), splits
    txt = root / "classes.txt"
    if txt.is_file():
        names = [line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip()]
        if names:
            return tuple(names), splits
    raise DatasetError(f"{root}: no data.yaml or classes.txt with class names (is this an `edge label` export?)")


def _parse_labels(path: Path, n_classes: int, problems: list[str]) -> np.ndarray:
    """-> (N, 5) rows cls cx cy w h; problems get one 'file:line: what' per bad line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            problems.append(f"{where}: not numbers: {line.strip()!r}")
            continue
        if len(values) != 5:
            problems.append(f"{where}: expected 5 values 'cls cx cy w h', got {len(values)}")
            continue
        cls, cx, cy, w, h = values
        if cls != int(cls) or not 0 <= cls < n_classes:
            problems.append(
                f"{where}: unknown class {values[0]:g} (the dataset has {n_classes}: ids 0..{n_classes - 1})"
            )
            continue
        t = EDGE_TOLERANCE
        if w <= 0 or h <= 0 or cx - w / 2 < -t or cy - h / 2 < -t or cx + w / 2 > 1 + t or cy + h / 2 > 1 + t:
            problems.append(
                f"{where}: box outside the image or empty (cx {cx:g}, cy {cy:g}, w {w:g}, h {h:g}; "
                "normalised values must keep the box inside 0..1)"
            )
            continue
        rows.append(values)
    return np.asarray(rows, np.float64).reshape(-1, 5)


def _load_split(root: Path, image_dir: str, names: tuple[str, ...], problems: list[str]) -> list[Item]:
    images = root / image_dir
    if not images.is_dir():
        problems.append(f"{images}: split folder missing")
        return []
    labels = root / image_dir.replace("images", "labels", 1)
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    stems = {p.stem for p in paths}
    if labels.is_dir():
        orphans = sorted(p.name for p in labels.glob("*.txt") if p.stem not in stems)
        if orphans:
            problems.append(
                f"{labels}: label files without an image: {', '.join(orphans[:5])}"
                + (f" (+{len(orphans) - 5} more)" if len(orphans) > 5 else "")
            )
    items = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            problems.append(f"{path}: not a readable image")
            continue
        label = labels / f"{path.stem}.txt"
        rows = _parse_labels(label, len(names), problems) if label.is_file() else np.zeros((0, 5))
        h, w = image.shape[:2]
        centre, size = rows[:, 1:3] * (w, h), rows[:, 3:5] * (w, h)
        xyxy = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        xyxy = np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32)
        items.append(Item(path, image, xyxy, rows[:, 0].astype(np.int64)))
    return items


def load_dataset(path: str | Path) -> Dataset:
    """Read and check the whole dataset; raise DatasetError listing every problem found."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    names, splits = _read_names(root)
    if len(set(names)) != len(names):
        raise DatasetError(f"{root}: duplicate class names in {list(names)}")
    problems: list[str] = []
    train = _load_split(root, splits["train"], names, problems)
    val = _load_split(root, splits["val"], names, problems)
    if not problems:
        if not any(len(i.boxes) for i in train):
            problems.append(
                f"{root / splits['train']}: no labelled boxes to learn from (label and mark frames done first)"
            )
        if not val:
            problems.append(f"{root / splits['val']}: no validation images (needed for early stopping and the report)")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise DatasetError(f"{root}: the dataset cannot be trained on:\n  " + "\n  ".join(shown))
    return Dataset(root, names, tuple(train), tuple(val))

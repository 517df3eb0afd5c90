"""Done frames -> a YOLO-format dataset, split by time into train and validation.

Neighbouring frames of one camera are near copies, so a random split would put the same car in both
halves and report a validation score that is really a training score. The done frames, in time
order, are cut into contiguous blocks: the last ``val_fraction`` of them (one block, at least one
frame) is validation. Layout::

    DATASET/data.yaml            names, train/val folders, source, the frames of each split
    DATASET/classes.txt          one name per line
    DATASET/images/{train,val}/  the frames (copied from the session)
    DATASET/labels/{train,val}/  one ``cls cx cy w h`` line (normalised) per box

The export never touches the session; an existing export in DATASET is replaced whole (its
folders are rebuilt in a temporary folder first, then swapped in).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from edgetally.errors import ConfigError
from edgetally.label.store import LabelStore


@dataclass(frozen=True)
class ExportSummary:
    directory: Path
    train_frames: int
    val_frames: int
    boxes: int
    val_range: tuple[int, int]  # first and last source frame index of the validation block

    def line(self) -> str:
        return (
            f"wrote {self.directory}: {self.train_frames} train + {self.val_frames} val frames, {self.boxes} boxes; "
            f"validation = source frames {self.val_range[0]}..{self.val_range[1]} (split by time)"
        )


def split_by_time(count: int, val_fraction: float) -> int:
    """Index of the first validation frame among ``count`` time-ordered frames."""
    if count < 2:
        raise ConfigError(f"export needs at least 2 done frames (one to train on, one to validate), got {count}")
    n_val = min(max(1, math.ceil(count * val_fraction)), count - 1)
    return count - n_val


def _yolo_line(xyxy: list[float], cls: int, width: int, height: int) -> str:
    x1, y1, x2, y2 = xyxy
    cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
    return f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def _check_target(out: Path, store: LabelStore) -> None:
    out, session = out.resolve(), store.directory.resolve()
    if out == session or out in session.parents or out == session / "frames":
        raise ConfigError(f"{out}: the dataset cannot replace the labelling session {session} or a folder holding it")
    if out.exists() and any(out.iterdir()) and not (out / "data.yaml").is_file():
        raise ConfigError(f"{out}: exists and is not an earlier export (no data.yaml): refusing to overwrite it")


def export_dataset(store: LabelStore, out: Path, val_fraction: float = 0.2) -> ExportSummary:
    """Write the dataset for every done frame; raises ConfigError when there is nothing to export."""
    out = Path(out)
    _check_target(out, store)
    labelled = store.labelled()
    first_val = split_by_time(len(labelled), val_fraction)
    classes = list(store.state["classes"])
    width, height = store.state["width"], store.state["height"]
    staging = out.with_name(f".{out.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    boxes = 0
    for k, (frame, items) in enumerate(labelled):
        split = "train" if k < first_val else "val"
        image = store.directory / frame["image"]
        (staging / "images" / split).mkdir(parents=True, exist_ok=True)
        (staging / "labels" / split).mkdir(parents=True, exist_ok=True)
        stem = f"frame_{frame['index']:06d}"
        shutil.copyfile(image, staging / "images" / split / f"{stem}{image.suffix}")
        lines = [_yolo_line(xyxy, classes.index(name), width, height) for xyxy, name in items]
        (staging / "labels" / split / f"{stem}.txt").write_text("".join(f"{ln}\n" for ln in lines))
        boxes += len(lines)
    val_frames = [f["index"] for f, _ in labelled[first_val:]]
    meta = {
        "path": ".",
        "train": "images/train",
        "val": "images/val",
        "names": classes,
        "source": store.state["source"],
        "split": "by time: the last block of done frames is validation",
        "train_frames": [f["index"] for f, _ in labelled[:first_val]],
        "val_frames": val_frames,
    }
    (staging / "data.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (staging / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return ExportSummary(out, first_val, len(labelled) - first_val, boxes, (val_frames[0], val_frames[-1]))

"""A labelling session as one small file (labels only, never the frames), and its replay.

``record(store)`` -> {source name and hash, classes, the sampled frames with their proposals as
they were offered, every action in order, and the final labels}. ``replay(file, video, dir)`` takes
the recorded frames out of the video again, offers the recorded proposals, applies the recorded
actions through the same LabelStore the page uses, and checks that the result equals the recorded
labels: a change in how actions are applied shows up as a mismatch, not as a silently different dataset.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import cv2

from edgetally.errors import ConfigError
from edgetally.label.store import ACTIONS, LabelStore

FORMAT = "edgetally label recording v1"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _final(store: LabelStore) -> list[dict[str, Any]]:
    return [
        {"index": f["index"], "boxes": [{"xyxy": xyxy, "class": name} for xyxy, name in boxes]}
        for f, boxes in store.labelled()
    ]


def record(store: LabelStore, proposals: list[dict[str, Any]]) -> dict[str, Any]:
    """The recording of ``store``; ``proposals``: the frames as first offered (copy taken at the start)."""
    source = Path(store.state["source"])
    actions = []
    log = store.directory / ACTIONS
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            action.pop("t", None)
            actions.append(action)
    return {
        "format": FORMAT,
        "source": source.name,
        "sha256": _sha256(source) if source.is_file() else None,
        "width": store.state["width"],
        "height": store.state["height"],
        "classes": store.state["classes"][: len(store.state["classes"])],
        "proposals": proposals,
        "actions": actions,
        "labels": _final(store),
    }


def _extract(video: Path, indices: set[int], frames_dir: Path) -> None:
    cap = cv2.VideoCapture(str(video))
    index, found = 0, set()
    frames_dir.mkdir(parents=True, exist_ok=True)
    while len(found) < len(indices):
        ok, image = cap.read()
        if not ok:
            break
        if index in indices:
            cv2.imwrite(str(frames_dir / f"frame_{index:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            found.add(index)
        index += 1
    cap.release()
    if found != indices:
        raise ConfigError(f"{video}: frames {sorted(indices - found)[:5]} of the recording are not in the video")


def replay(recording: Path | dict[str, Any], video: Path, directory: Path, check_hash: bool = True) -> LabelStore:
    """Rebuild the recorded session in ``directory`` from ``video``; raises ConfigError on any mismatch."""
    data = json.loads(Path(recording).read_text(encoding="utf-8")) if not isinstance(recording, dict) else recording
    if data.get("format") != FORMAT:
        raise ConfigError(f"{recording}: not a label recording ({FORMAT!r})")
    if check_hash and data.get("sha256") and _sha256(Path(video)) != data["sha256"]:
        raise ConfigError(f"{video}: not the video this session was recorded on (sha256 differs)")
    frames = copy.deepcopy(data["proposals"])
    _extract(Path(video), {f["index"] for f in frames}, Path(directory) / "frames")
    first_classes = [a["class"] for a in data["actions"] if a.get("op") == "add_class"]
    classes = [c for c in data["classes"] if c not in first_classes]
    for frame in frames:
        for box in frame["boxes"]:
            box.pop("id", None)
    store = LabelStore.create(Path(directory), str(video), classes, frames, data["width"], data["height"])
    for action in data["actions"]:
        store.apply(action)
    if _final(store) != data["labels"]:
        raise ConfigError(f"{recording}: replaying the actions does not give the recorded labels")
    return store

"""Start (or resume) a labelling session in LABELS_DIR over a video file or a folder of frames."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2

from edgetally.detector import Detector
from edgetally.errors import CameraError, ConfigError
from edgetally.label.propose import (
    _frames,
    count_frames,
    frame_proposals,
    pick_frames,
    scan,
)
from edgetally.label.store import SESSION, LabelStore

log = logging.getLogger(__name__)
JPEG_QUALITY = 95


def _classes(classes: Sequence[str]) -> list[str]:
    names = [c.strip() for c in classes if c.strip()]
    if not names:
        raise ConfigError("--classes: give at least one class name, e.g. --classes car,truck")
    bad = [c for c in names if any(ch.isspace() for ch in c)]
    if bad or len(set(names)) != len(names):
        raise ConfigError(f"--classes: names must be single words and unique, got {names}")
    return names


def start_session(
    source: str,
    directory: Path,
    classes: Sequence[str],
    count: int = 50,
    model: Path | None = None,
    say: Callable[[str], None] = log.info,
) -> LabelStore:
    """Resume the session in ``directory`` if there is one (nothing is re-sampled), else create it."""
    directory = Path(directory)
    if (directory / SESSION).is_file():
        store = LabelStore.open(directory)
        if store.state["source"] != str(source):
            say(f"note: resuming the session of {store.state['source']} (not re-sampling {source})")
        for name in _classes(classes) if classes else []:
            if name not in store.state["classes"]:
                store.apply({"op": "add_class", "class": name})
        done = sum(f["done"] for f in store.state["frames"])
        say(f"resumed {directory}: {len(store.state['frames'])} frames, {done} done")
        return store
    names = _classes(classes)
    total = count_frames(source)
    if total == 0:
        raise CameraError(f"{source}: no frames")
    say(f"{source}: {total} frames; learning the background and tracking motion ...")
    s = scan(source, total)
    picks = pick_frames(s, count)
    wanted = {s.indices[p]: p for p in picks}
    detector = Detector.from_artifact(model) if model is not None else None
    (directory / "frames").mkdir(parents=True, exist_ok=True)
    frames = []
    try:
        for index, t, image in _frames(source):
            if index not in wanted:
                continue
            p = wanted[index]
            name = f"frames/frame_{index:06d}.jpg"
            cv2.imwrite(str(directory / name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            dets = detector(image) if detector is not None else None
            labels = detector.labels if detector is not None else []
            boxes = frame_proposals(s.blobs[p], s.tracks[p], dets, labels, names)
            frames.append({"index": index, "time": round(t, 3), "image": name, "boxes": boxes})
    finally:
        if detector is not None:
            detector.close()
    store = LabelStore.create(directory, str(source), names, frames, s.width, s.height)
    n_boxes = sum(len(f["boxes"]) for f in frames)
    say(f"sampled {len(frames)} frames with {n_boxes} proposed boxes into {directory}")
    return store

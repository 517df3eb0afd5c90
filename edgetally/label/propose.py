"""Pick diverse frames from a clip and propose boxes on them, so a person confirms instead of drawing.

Three passes over a video file or a folder of frames (the project's own file sources):

1. Background: the per-pixel median of ``WARMUP_FRAMES`` frames spread over the whole clip is the
   empty scene (a fixed camera); it starts the MOG2 background model, so the first seconds already
   give clean blobs, and a busy road never becomes "background".
2. Motion: every frame (or every k-th of a long clip) goes through MOG2; foreground blobs become
   detections and the project's tracker (edgetally.tracking.Tracker) links them across frames, so a
   moving object keeps one track id over the sampled frames. Per frame a grey thumbnail is kept too.
3. Sampling: the clip's time is cut into as many equal segments as frames are wanted; in each the
   frame with the most motion and the most change in appearance since the last pick wins (objects
   present, light changes, no near-duplicates). Those frames are saved, and the current detector
   (an artifact, optional) adds its boxes: where one overlaps a motion box, that box gets the
   detector's class as a suggestion; elsewhere (parked, slow or still objects) it is a new proposal.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edgetally.structures import Detections
from edgetally.tracking import Tracker

log = logging.getLogger(__name__)

WARMUP_FRAMES = 60
WORK_WIDTH = 320  # background subtraction runs on frames scaled to this width
THUMB = (64, 36)
MIN_BLOB_AREA = 0.0006  # of the frame: smaller blobs are noise
MAX_BLOB_AREA = 0.25  # larger "objects" are light changes the gain match missed
MAX_PROCESSED = 4000  # frames through pass 2; a longer clip is strided
MATCH_IOU = 0.5
HISTORY = 200  # frames (~10 s at 20 fps): follows slow light changes; a slow bus is not absorbed
CLOSE_PX = 9  # closing kernel at WORK_WIDTH: joins the parts of one object
GAP_PX = 2  # blobs closer than this (at WORK_WIDTH) are one object


@dataclass
class ClipScan:
    """What pass 2 learned: per processed frame, its index, time, blobs (N, 4) with track ids (N,), thumbnail."""

    width: int = 0
    height: int = 0
    indices: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    blobs: list[np.ndarray] = field(default_factory=list)
    tracks: list[np.ndarray] = field(default_factory=list)
    thumbs: list[np.ndarray] = field(default_factory=list)


def _frames(source: str, stride: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    from edgetally.capture import open_source

    src = open_source(source)
    try:
        for frame in src:
            if frame.index % stride == 0:
                yield frame.index, frame.timestamp, frame.image
    finally:
        src.close()


def count_frames(source: str) -> int:
    return sum(1 for _ in _frames(source))


def _small(image: np.ndarray) -> tuple[np.ndarray, float]:
    scale = WORK_WIDTH / image.shape[1]
    return cv2.resize(image, (WORK_WIDTH, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA), scale


def _match_light(small: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Scale each channel so the frame's median matches the empty scene's: a cloud or the camera's gain
    moves every pixel at once, which MOG2 would report as one frame-sized object."""
    gain = level / (np.median(small.reshape(-1, 3), axis=0) + 1.0)
    return np.clip(small.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _blobs(mask: np.ndarray, scale: float) -> np.ndarray:
    """Foreground mask -> (N, 4) boxes in source pixels."""
    fg = (mask > 200).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (CLOSE_PX, CLOSE_PX)))
    _n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    x, y, w, h, area = (stats[1:, k].astype(np.float32) for k in range(5))
    boxes = _merge(np.stack([x, y, x + w, y + h], 1).reshape(-1, 4), area)
    keep = (boxes[:, 4] >= MIN_BLOB_AREA * fg.size) & (boxes[:, 4] <= MAX_BLOB_AREA * fg.size)
    return boxes[keep, :4] / scale


def _merge(boxes: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Merge blobs whose boxes touch or overlap (a dark car on a dark road falls apart into its
    lights, windows and roof). -> (N, 5) x1, y1, x2, y2, summed pixel area."""
    items = [np.append(b, a) for b, a in zip(boxes, area)]
    merged = True
    while merged and len(items) > 1:
        merged = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i], items[j]
                if a[0] - GAP_PX <= b[2] and b[0] - GAP_PX <= a[2] and a[1] - GAP_PX <= b[3] and b[1] - GAP_PX <= a[3]:
                    items[i] = np.array(
                        [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]), a[4] + b[4]]
                    )
                    del items[j]
                    merged = True
                    break
            if merged:
                break
    return np.array(items, np.float32).reshape(-1, 5)


def _link(tracker: Tracker, boxes: np.ndarray, t: float) -> np.ndarray:
    """Track id per blob (-1: not (yet) part of a confirmed track)."""
    dets = Detections(boxes, np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int64))
    tracks = tracker.update(dets, t)
    ids = np.full(len(boxes), -1, np.int64)
    if len(tracks) and len(boxes):
        from edgetally.postprocess import box_iou

        iou = box_iou(tracks.xyxy, boxes)
        for k in np.argsort(-iou.max(axis=1)):
            j = int(iou[k].argmax())
            if iou[k, j] >= MATCH_IOU and ids[j] < 0:
                ids[j] = int(tracks.ids[k])
                iou[:, j] = 0.0
    return ids


def scan(source: str, total: int) -> ClipScan:
    """Passes 1 and 2 (see the module doc)."""
    stride = max(1, -(-total // MAX_PROCESSED))
    bg = cv2.createBackgroundSubtractorMOG2(history=HISTORY, varThreshold=16, detectShadows=False)
    warm = set(np.linspace(0, max(total - 1, 0), min(WARMUP_FRAMES, total)).astype(int).tolist())
    samples = [_small(image)[0] for index, _, image in _frames(source) if index in warm]
    # The per-pixel median of frames spread over the clip is the empty scene wherever the scene is
    # empty more often than not: a clean start for MOG2 even when traffic never stops.
    empty = np.median(np.stack(samples), axis=0).astype(np.uint8)
    for _ in range(10):
        bg.apply(empty)
    result, tracker = ClipScan(), Tracker()
    level = np.median(empty.reshape(-1, 3), axis=0) + 1.0
    for index, t, image in _frames(source, stride):
        small, scale = _small(image)
        boxes = _blobs(bg.apply(_match_light(small, level)), scale)
        result.height, result.width = image.shape[:2]
        result.indices.append(index)
        result.times.append(float(t))
        result.blobs.append(boxes)
        result.tracks.append(_link(tracker, boxes, float(t)))
        result.thumbs.append(cv2.resize(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), THUMB, interpolation=cv2.INTER_AREA))
    return result


def pick_frames(s: ClipScan, count: int) -> list[int]:
    """Positions (into the scan) of ``count`` frames: one per equal time segment, most motion and change."""
    n = len(s.indices)
    if n == 0:
        return []
    count = min(count, n)
    edges = np.linspace(0, n, count + 1).astype(int)
    motion = np.array([len(b) for b in s.blobs], np.float64)
    motion = motion / max(motion.max(), 1.0)
    picked: list[int] = []
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        last = s.thumbs[picked[-1]].astype(np.float32) if picked else None
        change = np.array(
            [0.0 if last is None else float(np.abs(s.thumbs[i] - last).mean()) / 255.0 for i in range(a, b)]
        )
        change = change / max(change.max(), 1e-9)
        picked.append(int(a + np.argmax(motion[a:b] + 0.5 * change)))
    return picked


def frame_proposals(
    blobs: np.ndarray, tracks: np.ndarray, dets: Detections | None, labels: list[str], classes: list[str]
) -> list[dict[str, Any]]:
    """Motion boxes (with track ids) plus detector boxes, merged where they overlap."""
    boxes = [
        {"xyxy": [round(float(v), 1) for v in b], "track": int(t) if t >= 0 else None, "origin": "motion"}
        for b, t in zip(blobs, tracks)
    ]
    if dets is None or not len(dets):
        return boxes
    from edgetally.postprocess import box_iou

    iou = box_iou(dets.xyxy, blobs) if len(blobs) else np.zeros((len(dets), 0))
    for k in range(len(dets)):
        name = labels[int(dets.class_ids[k])]
        suggestion = name if name in classes else None
        j = int(iou[k].argmax()) if iou.shape[1] else -1
        if j >= 0 and iou[k, j] >= MATCH_IOU:
            boxes[j].setdefault("suggest", suggestion)
            continue
        boxes.append(
            {
                "xyxy": [round(float(v), 1) for v in dets.xyxy[k]],
                "track": None,
                "origin": "detector",
                "suggest": suggestion,
                "score": round(float(dets.scores[k]), 3),
            }
        )
    return boxes

"""A simulated person for synthetic scenes: labels an `edge label` session against exact ground truth,
through the same actions the page sends, and counts them (the labelling-effort figure).

Per sampled frame, the person must end with exactly the visible objects boxed and classed:
a proposal matching an object (IoU >= 0.5) is kept and, if its box is loose (IoU < 0.85), dragged to
the object (1 action); its class is set once per track (1 key, shared by every frame of the track) or
on the box when it has no track or its track has another class (1 key), or, where the detector suggested the right class, by one 'a' key for the whole frame;
a proposal matching nothing
is deleted (1 key), or its whole track at once when no box of that track matches anything on any
sampled frame (a swaying branch, a shadow: 1 key for all of them); an object no proposal found is drawn (1 drag + 1 class key); the frame is marked
done (1 key). Drawing everything by hand costs 2 actions per object + 1 per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgetally.label.store import LabelStore
from edgetally.postprocess import box_iou

MATCH_IOU = 0.5
GOOD_IOU = 0.8


@dataclass
class Effort:
    frames: int = 0
    boxes: int = 0
    actions: int = 0

    @property
    def per_frame(self) -> float:
        return self.actions / max(self.frames, 1)

    @property
    def drawing_per_frame(self) -> float:
        return (2 * self.boxes + self.frames) / max(self.frames, 1)

    def as_dict(self) -> dict[str, float]:
        return {
            "frames": self.frames,
            "boxes": self.boxes,
            "actions_with_proposals": self.actions,
            "actions_per_frame_with_proposals": round(self.per_frame, 2),
            "actions_per_frame_drawing_every_box": round(self.drawing_per_frame, 2),
        }


def _match(props: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """Greedy IoU matching proposal index -> truth index."""
    out: dict[int, int] = {}
    if not len(props) or not len(truth):
        return out
    iou = box_iou(props, truth)
    while iou.size and iou.max() >= MATCH_IOU:
        p, t = np.unravel_index(int(iou.argmax()), iou.shape)
        out[int(p)] = int(t)
        iou[p, :] = 0.0
        iou[:, t] = 0.0
    return out


def false_tracks(store: LabelStore, truth_for: Callable[[int], tuple[np.ndarray, list[str]]]) -> set[int]:
    """Tracks none of whose proposed boxes matches an object on any sampled frame."""
    seen: dict[int, bool] = {}
    for frame in store.state["frames"]:
        truth, _ = truth_for(frame["index"])
        boxes = [b for b in frame["boxes"] if b.get("track") is not None]
        props = np.array([b["xyxy"] for b in boxes], np.float32).reshape(-1, 4)
        hits = (
            box_iou(props, truth).max(axis=1) >= MATCH_IOU if len(props) and len(truth) else np.zeros(len(boxes), bool)
        )
        for box, hit in zip(boxes, hits):
            seen[box["track"]] = seen.get(box["track"], False) or bool(hit)
    return {t for t, hit in seen.items() if not hit}


def _set_class(store: LabelStore, index: int, box: dict, name: str, act: Callable[[dict], None]) -> None:
    track = box.get("track")
    if track is not None and str(track) not in store.state["tracks"]:
        act({"op": "set_track_class", "track": track, "class": name})
    else:
        act({"op": "set_box_class", "frame": index, "box": box["id"], "class": name})


def label_frame(
    store: LabelStore,
    index: int,
    truth_xyxy: np.ndarray,
    truth_names: Sequence[str],
    act: Callable[[dict], None],
    false: set[int] | None = None,
) -> tuple[int, int]:
    """Make frame ``index`` match the truth; -> (actions, objects)."""
    frame = next(f for f in store.state["frames"] if f["index"] == index)
    actions = 0
    for track in sorted({b["track"] for b in frame["boxes"] if b.get("track") in (false or set())}):
        act({"op": "delete_track", "track": track})
        actions += 1
    boxes = list(frame["boxes"])
    props = np.array([b["xyxy"] for b in boxes], np.float32).reshape(-1, 4)
    matched = _match(props, truth_xyxy)
    iou = box_iou(props, truth_xyxy) if len(props) and len(truth_xyxy) else None
    accepted = [
        k
        for k, b in enumerate(boxes)
        if k in matched and store.box_class(b) is None and b.get("suggest") == truth_names[matched[k]]
    ]
    for k in accepted:  # the page's 'a' key: every right suggestion on the frame, one key press
        _set_class(store, index, boxes[k], truth_names[matched[k]], act)
    actions += 1 if accepted else 0
    for k, box in enumerate(boxes):
        if k not in matched:
            act({"op": "delete_box", "frame": index, "box": box["id"]})
            actions += 1
            continue
        t = matched[k]
        if iou is not None and iou[k, t] < GOOD_IOU:
            act({"op": "move_box", "frame": index, "box": box["id"], "xyxy": truth_xyxy[t].tolist()})
            actions += 1
        name = truth_names[t]
        if store.box_class(box) == name:
            continue
        _set_class(store, index, box, name, act)
        actions += 1
    for t in sorted(set(range(len(truth_xyxy))) - set(matched.values())):
        act({"op": "add_box", "frame": index, "xyxy": truth_xyxy[t].tolist(), "class": truth_names[t]})
        actions += 2
    act({"op": "done", "frame": index})
    return actions + 1, len(truth_xyxy)


def label_session(store: LabelStore, truth_for: Callable[[int], tuple[np.ndarray, list[str]]]) -> Effort:
    """Label every sampled frame (time order); ``truth_for(index)`` -> (xyxy (N, 4), class names)."""
    effort = Effort()
    false = false_tracks(store, truth_for)
    for frame in sorted(store.state["frames"], key=lambda f: f["index"]):
        xyxy, names = truth_for(frame["index"])
        actions, objects = label_frame(store, frame["index"], xyxy, names, store.apply, false)
        effort.frames += 1
        effort.actions += actions
        effort.boxes += objects
    return effort


def scene_truth(
    truth, min_visibility: float = 0.5, min_side: float = 6.0
) -> Callable[[int], tuple[np.ndarray, list[str]]]:
    """truth_for() over a SceneTruth: the objects a person would box (mostly visible, not tiny)."""

    def truth_for(index: int) -> tuple[np.ndarray, list[str]]:
        fb = truth.frames[index]
        side = np.minimum(fb.xyxy[:, 2] - fb.xyxy[:, 0], fb.xyxy[:, 3] - fb.xyxy[:, 1])
        keep = (fb.visibility >= min_visibility) & (side >= min_side)
        return fb.xyxy[keep].astype(np.float32), [truth.labels[c] for c in fb.class_ids[keep]]

    return truth_for

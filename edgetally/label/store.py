"""The labelling session on disk: every change is applied, logged and written at once.

``LABELS_DIR/session.json`` holds the sampled frames, their boxes (proposed or drawn), the class set
per track and which frames are done; ``LABELS_DIR/actions.jsonl`` logs every action as it arrives
(the session can be replayed from the proposals and this log); ``LABELS_DIR/frames/`` holds the
sampled frames as images. session.json is replaced atomically (temp file, fsync, rename), so a
closed page, a killed server or a power cut loses at most the action in flight.

A box's class is its own (set on that box) or else its track's (one key press labels the whole
track); a box with neither is an unconfirmed proposal, and a frame with one cannot be marked done:
the person either gives it a class or deletes it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgetally.errors import ConfigError

SESSION = "session.json"
ACTIONS = "actions.jsonl"
MIN_SIDE = 2.0  # px: a box thinner than this is a slip of the mouse, not an object


class LabelError(ConfigError):
    """An action the session cannot apply (unknown class, frame or box; a box outside the image)."""


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class LabelStore:
    """The session state plus its two files; thread-safe (the HTTP server is threaded)."""

    def __init__(self, directory: Path, state: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.state = state
        self._lock = threading.Lock()
        self._frames = {f["index"]: f for f in state["frames"]}

    @classmethod
    def create(
        cls, directory: Path, source: str, classes: Iterable[str], frames: list[dict[str, Any]], width: int, height: int
    ) -> LabelStore:
        """A new session (frames: index, time, image, boxes with xyxy/track/origin/score)."""
        next_id = 1
        for frame in frames:
            frame.setdefault("done", False)
            for box in frame["boxes"]:
                box.update(id=next_id, **{"class": box.get("class")})
                next_id += 1
        state = {
            "version": 1,
            "source": source,
            "width": width,
            "height": height,
            "classes": list(classes),
            "tracks": {},
            "frames": frames,
            "next_id": next_id,
            "actions": 0,
        }
        store = cls(directory, state)
        store.directory.mkdir(parents=True, exist_ok=True)
        store._save()
        return store

    @classmethod
    def open(cls, directory: Path) -> LabelStore:
        path = Path(directory) / SESSION
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the labelling session: {exc}") from exc
        return cls(Path(directory), state)

    def _save(self) -> None:
        write_atomic(self.directory / SESSION, json.dumps(self.state, separators=(",", ":")))

    def _log(self, action: dict[str, Any]) -> None:
        with open(self.directory / ACTIONS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": round(time.time(), 3), **action}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.state))

    def apply(self, action: dict[str, Any], log: bool = True) -> dict[str, Any]:
        """Apply one action, persist it, and return the changed frame(s) or session part."""
        with self._lock:
            op = action.get("op")
            handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise LabelError(f"unknown action {op!r}")
            result = handler(action)
            self.state["actions"] += 1
            self._save()
            if log:
                self._log(action)
            return result

    # -- helpers ---------------------------------------------------------------------------------
    def box_class(self, box: dict[str, Any]) -> str | None:
        if box.get("class"):
            return str(box["class"])
        track = box.get("track")
        return self.state["tracks"].get(str(track)) if track is not None else None

    def _frame(self, action: dict[str, Any]) -> dict[str, Any]:
        frame = self._frames.get(action.get("frame"))  # type: ignore[arg-type]
        if frame is None:
            raise LabelError(f"no sampled frame {action.get('frame')!r}")
        return frame

    def _box(self, frame: dict[str, Any], box_id: Any) -> dict[str, Any]:
        for box in frame["boxes"]:
            if box["id"] == box_id:
                return box
        raise LabelError(f"frame {frame['index']} has no box {box_id!r}")

    def _class(self, name: Any) -> str:
        if name not in self.state["classes"]:
            raise LabelError(f"unknown class {name!r}; the session has {self.state['classes']} (add it first)")
        return str(name)

    def _xyxy(self, value: Any) -> list[float]:
        try:
            x1, y1, x2, y2 = (float(v) for v in value)
        except (TypeError, ValueError):
            raise LabelError(f"box: expected [x1, y1, x2, y2], got {value!r}") from None
        w, h = self.state["width"], self.state["height"]
        x1, x2 = sorted((min(max(x1, 0.0), w), min(max(x2, 0.0), w)))
        y1, y2 = sorted((min(max(y1, 0.0), h), min(max(y2, 0.0), h)))
        if x2 - x1 < MIN_SIDE or y2 - y1 < MIN_SIDE:
            raise LabelError(f"box {value!r} is empty or outside the {w}x{h} image")
        return [round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)]

    def _touch(self, frame: dict[str, Any]) -> dict[str, Any]:
        return {"frames": [frame], "tracks": self.state["tracks"]}

    # -- actions ---------------------------------------------------------------------------------
    def _op_add_class(self, a: dict[str, Any]) -> dict[str, Any]:
        name = str(a.get("class", "")).strip()
        if not name or any(c.isspace() for c in name):
            raise LabelError(f"class name {a.get('class')!r}: expected one word")
        if name not in self.state["classes"]:
            self.state["classes"].append(name)
        return {"classes": self.state["classes"]}

    def _op_set_track_class(self, a: dict[str, Any]) -> dict[str, Any]:
        track = a.get("track")
        if not any(b.get("track") == track for f in self.state["frames"] for b in f["boxes"]):
            raise LabelError(f"no track {track!r}")
        self.state["tracks"][str(track)] = self._class(a.get("class"))
        for frame in self.state["frames"]:  # the track's class now wins over one-off box classes
            for box in frame["boxes"]:
                if box.get("track") == track:
                    box["class"] = None
        return {
            "frames": [f for f in self.state["frames"] if any(b.get("track") == track for b in f["boxes"])],
            "tracks": self.state["tracks"],
        }

    def _op_set_box_class(self, a: dict[str, Any]) -> dict[str, Any]:
        frame = self._frame(a)
        self._box(frame, a.get("box"))["class"] = self._class(a.get("class"))
        return self._touch(frame)

    def _op_add_box(self, a: dict[str, Any]) -> dict[str, Any]:
        frame = self._frame(a)
        box = {
            "id": self.state["next_id"],
            "xyxy": self._xyxy(a.get("xyxy")),
            "track": None,
            "origin": "person",
            "class": self._class(a["class"]) if a.get("class") is not None else None,
        }
        self.state["next_id"] += 1
        frame["boxes"].append(box)
        frame["done"] = False
        return self._touch(frame)

    def _op_move_box(self, a: dict[str, Any]) -> dict[str, Any]:
        frame = self._frame(a)
        self._box(frame, a.get("box"))["xyxy"] = self._xyxy(a.get("xyxy"))
        return self._touch(frame)

    def _op_delete_box(self, a: dict[str, Any]) -> dict[str, Any]:
        frame = self._frame(a)
        box = self._box(frame, a.get("box"))
        frame["boxes"].remove(box)
        return self._touch(frame)

    def _op_merge_boxes(self, a: dict[str, Any]) -> dict[str, Any]:
        """One object that motion split into parts: the union box keeps the first box's track and class."""
        frame = self._frame(a)
        ids = a.get("boxes")
        if not isinstance(ids, list) or len(ids) < 2:
            raise LabelError("merge_boxes: give at least two box ids")
        parts = [self._box(frame, i) for i in ids]
        xyxy = [
            min(p["xyxy"][0] for p in parts),
            min(p["xyxy"][1] for p in parts),
            max(p["xyxy"][2] for p in parts),
            max(p["xyxy"][3] for p in parts),
        ]
        parts[0]["xyxy"] = xyxy
        for part in parts[1:]:
            frame["boxes"].remove(part)
        return self._touch(frame)

    def _op_delete_track(self, a: dict[str, Any]) -> dict[str, Any]:
        """A false track (a swaying branch, a shadow): every unconfirmed box of it goes, on every frame."""
        track, changed = a.get("track"), []
        for frame in self.state["frames"]:
            keep = [b for b in frame["boxes"] if b.get("track") != track or b.get("class")]
            if len(keep) != len(frame["boxes"]):
                frame["boxes"] = keep
                changed.append(frame)
        if not changed:
            raise LabelError(f"no unconfirmed boxes of track {track!r}")
        self.state["tracks"].pop(str(track), None)
        return {"frames": changed, "tracks": self.state["tracks"]}

    def _op_done(self, a: dict[str, Any]) -> dict[str, Any]:
        frame = self._frame(a)
        done = bool(a.get("done", True))
        if done:
            open_boxes = [b["id"] for b in frame["boxes"] if self.box_class(b) is None]
            if open_boxes:
                raise LabelError(
                    f"frame {frame['index']}: {len(open_boxes)} box(es) have no class yet: "
                    "give each a class or delete it, then mark the frame done"
                )
        frame["done"] = done
        return self._touch(frame)

    def labelled(self) -> list[tuple[dict[str, Any], list[tuple[list[float], str]]]]:
        """Done frames in time order with their final (xyxy, class) boxes."""
        with self._lock:
            frames = sorted((f for f in self.state["frames"] if f["done"]), key=lambda f: f["index"])
            return [(f, [(b["xyxy"], self.box_class(b)) for b in f["boxes"]]) for f in frames]  # type: ignore[misc]

"""Record a labelling session on a real video as a small label file (labels only) that tests replay.

    .venv/bin/python -m benchmarks.record_label_session ../shared/data/videos/traffic_road.mp4 \
        --classes car,truck,bus --frames 40 --out tests/data/traffic_road.labels.json

The session is `edge label`'s own (frames sampled for diversity, motion boxes linked by the tracker,
the COCO detector's boxes and classes as suggestions). The actions are scripted rather than typed: on
every frame the boxes are made to agree with the detector's confident boxes (score >= --min-score, one box per vehicle)
through the page's actions (keep and class a track, drag a loose box, delete a fragment, draw a
missed one, mark done): benchmarks/label_oracle.py. The result was checked by eye on a contact sheet
(--sheet) before it was committed.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.label_oracle import label_session
from edgetally.detector import Detector
from edgetally.label.replay import record
from edgetally.label.session import start_session
from edgetally.postprocess import nms

REPO = Path(__file__).resolve().parents[1]


def _artifact(work: Path) -> Path:
    from edgetally.converters.package import package_fp32

    return package_fp32(
        REPO.parent / "shared/data/models/yolox_nano.onnx", work / "art", "yolox", 416, "coco80"
    ).directory


def _sheet(store, path: Path) -> None:
    tiles = []
    for frame, boxes in store.labelled()[:12]:
        img = cv2.imread(str(store.directory / frame["image"]))
        for xyxy, name in boxes:
            x1, y1, x2, y2 = (int(v) for v in xyxy)
            cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 2)
            cv2.putText(img, name, (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
        tiles.append(cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
    rows = [np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles) - len(tiles) % 3, 3)]
    cv2.imwrite(str(path), np.vstack(rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--classes", default="car,truck,bus")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--min-score", type=float, default=0.2)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sheet", type=Path, default=None, help="write a contact sheet of the first 12 labelled frames")
    args = ap.parse_args(argv)
    classes = args.classes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        art = _artifact(work)
        store = start_session(str(args.video.resolve()), work / "session", classes, args.frames, art, say=print)
        proposals = copy.deepcopy(store.state["frames"])
        detector = Detector.from_artifact(art)
        images = {f["index"]: cv2.imread(str(store.directory / f["image"])) for f in store.state["frames"]}

        def truth_for(index: int) -> tuple[np.ndarray, list[str]]:
            dets = detector(images[index])
            names = [detector.labels[int(c)] for c in dets.class_ids]
            keep = [k for k, n in enumerate(names) if n in classes and dets.scores[k] >= args.min_score]
            keep = [
                keep[k] for k in nms(dets.xyxy[keep], dets.scores[keep], 0.6)
            ]  # one box per vehicle, its best class
            return dets.xyxy[keep].astype(np.float32).reshape(-1, 4), [names[k] for k in keep]

        effort = label_session(store, truth_for)
        detector.close()
        data = record(store, proposals)
        if args.sheet is not None:
            _sheet(store, args.sheet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(json.dumps(effort.as_dict()), f"-> {args.out} ({args.out.stat().st_size} B)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

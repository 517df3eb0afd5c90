"""Detections per frame, computed once per (video, model) and cached on disk.

The detector is the runner's own parts (runtime, Preprocessor, decoder); ``load_detector`` is the
one place that wires them, so the lead's ``Detector`` can replace it in one line. Detections are
stored at CACHE_SCORE (below any threshold a run uses): a run filters them to its own threshold,
which gives the same boxes as decoding at that threshold (greedy NMS never lets a lower-scoring
box suppress a higher one).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgetally.structures import Detections

CACHE_SCORE = 0.1


@dataclass(frozen=True)
class CachedRun:
    """Per-frame detections of one video and the detector's measured time per inference."""

    detections: list[Detections]
    infer_ms: float  # median preprocess + inference + decode, measured when the cache was made


def load_detector(artifact: Path, threads: int = 1) -> Callable[[np.ndarray], Detections]:
    """image (H, W, 3) BGR -> Detections at CACHE_SCORE, with the runner's runtime and decoder."""
    from edgetally.artifact import Artifact
    from edgetally.postprocess import build_decoder
    from edgetally.preprocess import Preprocessor
    from edgetally.runtimes import load_runtime

    art = Artifact.load(artifact)
    runtime = load_runtime(art, threads=threads)
    pre = Preprocessor(art.manifest.input)
    decode = build_decoder(art.manifest, CACHE_SCORE)

    def detect(image: np.ndarray) -> Detections:
        tensor, letterbox = pre(image)
        return decode(runtime.infer(tensor), letterbox)

    return detect


def iter_frames(video: Path) -> Iterator[np.ndarray]:
    """Every frame of ``video`` in decode order (BGR); ValueError when it cannot be opened."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ValueError(f"{video}: cannot open the video")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def cached_detections(video: Path, artifact: Path, cache_dir: Path, log: Callable[[str], None] = print) -> CachedRun:
    """Detections of every frame of ``video``: read from ``cache_dir`` when this video and model
    were seen before (keyed by both files' hashes), else computed and stored."""
    key = _key(video, artifact)
    path = cache_dir / f"{video.stem}-{key}.npz"
    if path.is_file():
        return _load(path)
    log(f"detecting {video.name} with {artifact} (cached in {path})")
    detect = load_detector(artifact)
    frames, times = [], []
    for image in iter_frames(video):
        t0 = time.perf_counter()
        frames.append(detect(image))
        times.append(time.perf_counter() - t0)
    run = CachedRun(frames, 1000.0 * float(np.median(times)) if times else 0.0)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _save(path, run)
    return run


def _key(video: Path, artifact: Path) -> str:
    h = hashlib.sha256()
    h.update(hashlib.sha256(video.read_bytes()).digest())
    manifest = json.loads((artifact / "manifest.json").read_text())
    h.update(json.dumps(manifest, sort_keys=True).encode())
    h.update(repr(CACHE_SCORE).encode())
    return h.hexdigest()[:12]


def _save(path: Path, run: CachedRun) -> None:
    counts = np.array([len(d) for d in run.detections], np.int64)
    cat = run.detections or [Detections.empty()]
    np.savez_compressed(
        path,
        counts=counts,
        infer_ms=np.array(run.infer_ms),
        xyxy=np.concatenate([d.xyxy for d in cat]),
        scores=np.concatenate([d.scores for d in cat]),
        class_ids=np.concatenate([d.class_ids for d in cat]),
    )


def _load(path: Path) -> CachedRun:
    data = np.load(path)
    bounds = np.concatenate([[0], np.cumsum(data["counts"])])
    frames = [
        Detections(data["xyxy"][a:b], data["scores"][a:b], data["class_ids"][a:b])
        for a, b in itertools.pairwise(bounds)
    ]
    return CachedRun(frames, float(data["infer_ms"]))

"""K-fold calibration/evaluation splits for the accuracy gate: no image is both calibrated and judged on.

Sources: the calibration source (image folder or video), a labelled or unlabelled evaluation folder
(``--eval-images``), and a label-free holdout from the deployment camera (``--holdout``: video or
folder). The calibration source is cut into K groups -- every K-th image of a folder (so each group
spans the folder), K contiguous time segments of a video (neighbouring frames are near-copies, so an
interleaved split would evaluate on the calibration frames' twins). Fold i calibrates on everything
but group i (and, for a video, the sampled frames beside segment i). When the calibration source is
also evaluated (a shared folder, or a calibration video as its own holdout), fold i judges group i;
a separate evaluation source is judged whole in every fold (it never calibrates; the folds then differ
by their calibration subsets). The gate requires every fold to pass: the worst fold decides.

K = 1 is the single split ``edge convert`` always made: calibration evenly spaced over the source,
evaluation on the evaluation folder minus the calibration images (by content hash).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetally.artifact import InputSpec
from edgetally.converters.accuracy.calibration import (
    MIN_COUNT,
    VIDEO_SUFFIXES,
    CalibrationSet,
    evenly_spaced,
    file_sha256,
    list_images,
    load_calibration,
)
from edgetally.converters.accuracy.evaluate import EvalImage, load_eval_set, read_yolo_labels
from edgetally.errors import ConversionError, UsageError

MIN_EVAL_IMAGES = 16
# With labels the gate compares mAP, FP32 vs INT8 on the same boxes (paired): a camera's own validation
# split (`edge label` keeps the last 20 % of ~50 frames, each with many objects) is enough.
MIN_LABELLED_EVAL_IMAGES = 8
# Video frames kept for evaluation are shrunk to at most this multiple of the model input side: the
# letterbox shrinks them anyway, and a 1080p pool would otherwise hold gigabytes.
_MAX_FRAME_SCALE = 2


@dataclass(frozen=True)
class Fold:
    """One calibration set and what its artifact is judged on."""

    calibration: CalibrationSet | None
    images: Sequence[EvalImage]  # labelled: mAP drop; unlabelled: agreement with FP32
    holdout: Sequence[EvalImage] = ()  # label-free frames from the deployment camera: agreement with FP32
    name: str = "fold 1/1"


@dataclass(frozen=True)
class Source:
    """An image folder or a video, listed (folder) or sampled (video) but decoded only where needed."""

    path: Path
    video: bool
    names: tuple[str, ...]  # file names, or "video.mp4#frame"
    positions: tuple[int, ...]  # listing index, or frame index
    total: int  # files in the folder, frames in the video
    labels: Path | None = None
    _frames: dict = field(default_factory=dict, compare=False)  # video: position -> (frame, sha256)

    def groups(self, k: int) -> list[list[int]]:
        """Indices into ``names`` per group: every k-th file, or k contiguous time segments."""
        if self.video:
            return [[j for j, p in enumerate(self.positions) if p * k // self.total == i] for i in range(k)]
        return [list(range(i, len(self.names), k)) for i in range(k)]

    def same_as(self, other: Source | None) -> bool:
        return other is not None and self.path.resolve() == other.path.resolve()


def open_source(path: Path, sample: int, labels: Path | None = None, max_side: int = 0) -> Source:
    """List a folder, or decode ``sample`` frames spread evenly over a video (shrunk to ``max_side``)."""
    path = Path(path)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise ConversionError(f"{path}: no images")
        return Source(path, False, tuple(f.name for f in files), tuple(range(len(files))), len(files), labels)
    if not (path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES):
        raise ConversionError(f"{path}: not an image folder or a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    if labels is not None:
        raise UsageError(f"{path}: labels apply to an image folder, not to a video")
    frames = _read_frames(path, sample, max_side)
    positions = tuple(sorted(frames))
    source = Source(path, True, tuple(f"{path.name}#{p}" for p in positions), positions, _frame_count(path))
    source._frames.update(frames)
    return source


def _frame_count(video: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def _read_frames(video: Path, count: int, max_side: int) -> dict[int, tuple[np.ndarray, str]]:
    """Frame index -> (BGR frame, sha256 of the decoded frame), read sequentially (seeking is inexact)."""
    import cv2

    total = _frame_count(video)
    if total <= 0:
        raise ConversionError(f"{video}: cannot read the video (unsupported codec or not a video file)")
    wanted = set(evenly_spaced(total, count))
    capture = cv2.VideoCapture(str(video))
    frames: dict[int, tuple[np.ndarray, str]] = {}
    try:
        for index in range(total):
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                digest = hashlib.sha256(frame.tobytes()).hexdigest()
                scale = max_side / max(frame.shape[:2]) if max_side else 1.0
                if scale < 1.0:
                    frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                frames[index] = (frame, digest)
    finally:
        capture.release()
    if len(frames) < MIN_COUNT:
        raise ConversionError(f"{video}: only {len(frames)} readable frames")
    return frames


def _image(source: Source, index: int) -> tuple[np.ndarray | None, str]:
    if source.video:
        return source._frames[source.positions[index]]
    import cv2

    path = source.path / source.names[index]
    return cv2.imread(str(path), cv2.IMREAD_COLOR), file_sha256(path)


def eval_items(source: Source, indices: Sequence[int], exclude: frozenset[str] = frozenset()) -> list[EvalImage]:
    """Decoded evaluation images (with labels when the source has them), minus hashes in ``exclude``."""
    items = []
    for index in indices:
        image, digest = _image(source, index)
        if image is None or digest in exclude:
            continue
        truth = None
        if source.labels is not None:
            label = source.labels / f"{Path(source.names[index]).stem}.txt"
            truth = read_yolo_labels(label, image.shape[1], image.shape[0])
        items.append(EvalImage(source.path / source.names[index], image, truth, digest))
    return items


def calibration_from(source: Source, indices: Sequence[int], spec: InputSpec) -> CalibrationSet:
    """Preprocess the chosen images/frames with the runner's own Preprocessor (as load_calibration does)."""
    from edgetally.preprocess import Preprocessor

    preprocess = Preprocessor(spec.model_copy(update={"dtype": "float32", "quantization": None}))
    tensors, names, hashes, skipped = [], [], [], []
    for index in indices:
        image, digest = _image(source, index)
        if image is None:
            skipped.append(source.names[index])
            continue
        tensors.append(preprocess(image)[0][0].copy())
        names.append(source.names[index])
        hashes.append(digest)
    if len(tensors) < MIN_COUNT:
        raise ConversionError(
            f"{source.path}: only {len(tensors)} usable calibration images for a fold, "
            f"need at least {MIN_COUNT}: give more images or fewer --folds"
        )
    return CalibrationSet(np.stack(tensors), tuple(names), tuple(hashes), str(source.path), tuple(skipped))


@dataclass(frozen=True)
class SplitRequest:
    calib: Path
    calib_count: int = 64
    folds: int = 1
    eval_images: Path | None = None
    eval_labels: Path | None = None
    holdout: Path | None = None  # label-free frames from the deployment camera (video or folder)


def plan_folds(request: SplitRequest, spec: InputSpec) -> tuple[list[Fold], dict]:
    """The gate's folds and a description of them for report.json (``evaluation``)."""
    if request.folds < 1:
        raise UsageError(f"--folds {request.folds}: need at least 1")
    if request.eval_labels is not None and request.eval_images is None and not Path(request.calib).is_dir():
        raise UsageError("--eval-labels needs --eval-images (the calibration source is a video)")
    folds = _single_split(request, spec) if request.folds == 1 else _k_folds(request, spec)
    for fold in folds:
        labelled = bool(fold.images) and fold.images[0].truth is not None
        if (
            len(fold.images) < (MIN_LABELLED_EVAL_IMAGES if labelled else MIN_EVAL_IMAGES)
            and len(fold.holdout) < MIN_EVAL_IMAGES
        ):
            raise UsageError(
                f"{fold.name}: only {len(fold.images)} evaluation images and {len(fold.holdout)} holdout "
                f"frames not used for calibration; the gate needs at least {MIN_EVAL_IMAGES} "
                f"({MIN_LABELLED_EVAL_IMAGES} labelled) (give --eval-images or --holdout, or fewer --folds)"
            )
    return folds, _describe(request, folds)


def _single_split(request: SplitRequest, spec: InputSpec) -> list[Fold]:
    calibration = load_calibration(request.calib, spec, request.calib_count)
    images_dir = request.eval_images or (request.calib if Path(request.calib).is_dir() else None)
    if images_dir is None and request.holdout is None:
        raise UsageError(
            "--eval-images or --holdout is required for the accuracy gate when --calib is a video "
            "(or use --folds 2 or more: held-out segments of the video)"
        )
    images = load_eval_set(images_dir, request.eval_labels, calibration.sha256) if images_dir is not None else []
    holdout: list[EvalImage] = []
    if request.holdout is not None:
        if Path(request.holdout).resolve() == Path(request.calib).resolve():
            raise UsageError("--holdout is the calibration source: use --folds 2 or more so it is split in time")
        source = open_source(request.holdout, 4 * MIN_EVAL_IMAGES, max_side=_max_side(spec))
        holdout = eval_items(source, range(len(source.names)), frozenset(calibration.sha256))
    return [Fold(calibration, images, holdout, "fold 1/1")]


def _max_side(spec: InputSpec) -> int:
    return _MAX_FRAME_SCALE * max(spec.height, spec.width)


def _k_folds(request: SplitRequest, spec: InputSpec) -> list[Fold]:
    k, count = request.folds, request.calib_count
    calib_path = Path(request.calib)
    eval_path = request.eval_images or (calib_path if calib_path.is_dir() else None)
    holdout_path = request.holdout or (calib_path if eval_path is None else None)
    labels = request.eval_labels if eval_path is not None and eval_path.resolve() == calib_path.resolve() else None
    # a sampled video keeps enough frames for calibration outside any one segment, plus its evaluation share
    sample = max(-(-count * k // (k - 1)) + 2 * k, k * MIN_EVAL_IMAGES)
    calib = open_source(calib_path, sample, labels, _max_side(spec))
    evaluated = [_reuse(calib, path, request.eval_labels, k, spec) for path in (eval_path, holdout_path)]
    folds = []
    for i in range(k):
        calibration = calibration_from(calib, _calibration_picks(calib, evaluated, k, i, count), spec)
        used = frozenset(calibration.sha256)
        images, holdout = ([] if s is None else eval_items(s, _judged(s, calib, k, i), used) for s in evaluated)
        folds.append(Fold(calibration, images, holdout, f"fold {i + 1}/{k}"))
    return folds


def _judged(source: Source, calib: Source, k: int, i: int) -> Sequence[int]:
    """What fold i judges of ``source``: its group i when it is also the calibration source, else all of it."""
    return source.groups(k)[i] if source is calib else range(len(source.names))


def _reuse(calib: Source, path: Path | None, labels: Path | None, k: int, spec: InputSpec) -> Source | None:
    """The evaluation source at ``path``: the calibration source itself when it is the same folder/video."""
    if path is None:
        return None
    if Path(path).resolve() == calib.path.resolve():
        return calib
    return open_source(path, 4 * MIN_EVAL_IMAGES, labels if Path(path).is_dir() else None, _max_side(spec))


def _calibration_picks(calib: Source, evaluated: Sequence[Source | None], k: int, i: int, count: int) -> list[int]:
    """Fold i calibrates on the calibration source minus its group i (and, for a video, the frames beside it)."""
    group = set(calib.groups(k)[i])
    if calib.video and group and any(calib.same_as(s) for s in evaluated):
        group |= {min(group) - 1, max(group) + 1}  # neighbouring frames are near-copies of the segment's edges
    candidates = [j for j in range(len(calib.names)) if j not in group]
    return [candidates[t] for t in evenly_spaced(len(candidates), count)]


def _describe(request: SplitRequest, folds: Sequence[Fold]) -> dict:
    first = folds[0]
    labelled = bool(first.images) and all(item.truth is not None for item in first.images)
    return {
        "folds": len(folds),
        "images_dir": str(request.eval_images or request.calib) if first.images else None,
        "labels_dir": str(request.eval_labels) if request.eval_labels else None,
        "holdout": str(request.holdout or request.calib) if first.holdout else None,
        "count": len(first.images),
        "per_fold": [
            {
                "name": f.name,
                "calibration": len(f.calibration) if f.calibration else 0,
                "images": len(f.images),
                "holdout": len(f.holdout),
            }
            for f in folds
        ],
        "excluded_calibration_images": True,
        "metric": "COCO mAP50-95" if labelled else "agreement F1@IoU0.5 vs FP32",
        "holdout_metric": "agreement F1@IoU0.5 vs FP32 (label-free)" if first.holdout else None,
    }

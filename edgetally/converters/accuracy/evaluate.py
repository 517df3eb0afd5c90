"""Run an artifact over evaluation images and score it: COCO mAP with labels, F1 agreement without.

The artifact runs through the runner's own stack (Preprocessor -> load_runtime -> build_decoder),
so what the gate measures is what the board will run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from edgetally.artifact import Artifact
from edgetally.converters.accuracy.calibration import list_images
from edgetally.converters.accuracy.metrics import ImageBoxes, MatchTable, agreement_f1
from edgetally.errors import ConversionError

# COCO evaluation settings: a low threshold so the whole PR curve exists, 100 detections per image.
EVAL_SCORE_THRESHOLD = 0.001
EVAL_MAX_DETECTIONS = 100


@dataclass(frozen=True)
class EvalImage:
    path: Path
    image: np.ndarray  # (H, W, 3) uint8 BGR, decoded once and shared by every model evaluated
    truth: ImageBoxes | None  # None: no labels directory given (label-free agreement only)
    sha256: str = ""  # content hash of the file / decoded frame (never train or calibrate on it)


def read_yolo_labels(path: Path, width: int, height: int) -> ImageBoxes:
    """YOLO ``cls cx cy w h`` (normalised) -> pixel xyxy. A missing file is a background image."""
    rows = np.zeros((0, 5))
    if path.is_file():
        text = path.read_text().strip()
        if text:
            try:
                rows = np.array([[float(v) for v in line.split()[:5]] for line in text.splitlines() if line.strip()])
            except ValueError as exc:
                raise ConversionError(
                    f"{path}: not a YOLO label file (expected 'cls cx cy w h' per line): {exc}"
                ) from exc
    centre = rows[:, 1:3] * (width, height)
    size = rows[:, 3:5] * (width, height)
    return ImageBoxes(np.concatenate([centre - size / 2, centre + size / 2], axis=1), rows[:, 0].astype(np.int64))


def load_eval_set(
    images_dir: Path, labels_dir: Path | None = None, exclude_sha256: Sequence[str] = (), limit: int | None = None
) -> list[EvalImage]:
    """Images (sorted) minus any whose content hash is in ``exclude_sha256`` (the calibration set)."""
    import cv2

    from edgetally.converters.accuracy.calibration import file_sha256

    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise ConversionError(f"{images_dir}: evaluation image folder not found")
    excluded = set(exclude_sha256)
    result: list[EvalImage] = []
    for path in list_images(images_dir):
        digest = file_sha256(path)
        if digest in excluded:
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        truth = None
        if labels_dir is not None:
            truth = read_yolo_labels(Path(labels_dir) / f"{path.stem}.txt", image.shape[1], image.shape[0])
        result.append(EvalImage(path, image, truth, digest))
        if limit is not None and len(result) >= limit:
            break
    if not result:
        raise ConversionError(f"{images_dir}: no readable evaluation images left (after excluding calibration images)")
    return result


def mirrored(item: EvalImage) -> EvalImage:
    """The image flipped left-right, its labels with it: the same scene seen from the other side."""
    truth = item.truth
    if truth is not None:
        width = item.image.shape[1]
        xyxy = np.asarray(truth.xyxy, dtype=np.float64).copy()
        xyxy[:, [0, 2]] = width - xyxy[:, [2, 0]]
        truth = ImageBoxes(xyxy, truth.class_ids, truth.scores, truth.crowd)
    return EvalImage(item.path, np.ascontiguousarray(item.image[:, ::-1]), truth, item.sha256)


class MirroredViews(Sequence[EvalImage]):
    """The images, then each of them mirrored; a mirror is made when it is read, so a large
    evaluation set is never held twice."""

    def __init__(self, images: Sequence[EvalImage]) -> None:
        self._images = list(images)

    def __len__(self) -> int:
        return 2 * len(self._images)

    @overload
    def __getitem__(self, index: int) -> EvalImage: ...
    @overload
    def __getitem__(self, index: slice) -> list[EvalImage]: ...
    def __getitem__(self, index: int | slice) -> EvalImage | list[EvalImage]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self._images)
        if not -2 * n <= index < 2 * n:
            raise IndexError(index)
        index %= 2 * n
        return self._images[index] if index < n else mirrored(self._images[index - n])


def with_mirrors(images: Sequence[EvalImage]) -> tuple[Sequence[EvalImage], np.ndarray | None]:
    """Labelled images, then each of them mirrored: (views, which image each view is of).

    A detector is trained on mirrored images too, but an INT8 model's rounding errors fall
    differently on the mirrored input, so the second view is a second, partly independent sample
    of the drop: the drop over both moves a third to a half less with the choice of images
    (docs/int8.md, "Each image with its mirror"). Unlabelled sets are returned as they are (groups None)."""
    if not images or any(item.truth is None for item in images):
        return list(images), None
    return MirroredViews(images), np.tile(np.arange(len(images)), 2)


def executor_for(artifact: Artifact) -> str | None:
    """The runtime that executes an artifact here (the target registry's executor: TensorRT QDQ -> onnxruntime)."""
    from edgetally.converters.targets import executor_for as registry_executor

    return registry_executor(artifact.manifest.runtime)


def detect_all(
    artifact: Artifact,
    images: Sequence[EvalImage],
    threads: int = 2,
    score_threshold: float = EVAL_SCORE_THRESHOLD,
    max_detections: int = EVAL_MAX_DETECTIONS,
    runtime: str | None = None,
) -> list[ImageBoxes]:
    """Detections of ``artifact`` on every image, in source-image pixels."""
    from edgetally.detector import Detector
    from edgetally.runtimes import load_runtime

    detector = Detector(
        artifact,
        load_runtime(artifact, threads=threads, runtime=runtime or executor_for(artifact)),
        score_threshold=score_threshold,
        max_detections=max_detections,
    )
    try:
        results = []
        for item in images:
            dets = detector(item.image)
            results.append(
                ImageBoxes(
                    np.asarray(dets.xyxy, dtype=np.float64),
                    np.asarray(dets.class_ids),
                    np.asarray(dets.scores, dtype=np.float64),
                )
            )
        return results
    finally:
        detector.close()


def match_table(images: Sequence[EvalImage], detections: Sequence[ImageBoxes]) -> MatchTable | None:
    """Detections matched to the labels (mAP of all images or of resamples), or None without labels."""
    if any(item.truth is None for item in images):
        return None
    return MatchTable([item.truth for item in images], detections)  # type: ignore[misc]


def at_threshold(detections: Sequence[ImageBoxes], threshold: float) -> list[ImageBoxes]:
    """The detections a deployed runner would report (score >= its threshold)."""
    out = []
    for d in detections:
        keep = d.scores >= threshold
        out.append(ImageBoxes(d.xyxy[keep], d.class_ids[keep], d.scores[keep]))
    return out


def agreement(reference: Sequence[ImageBoxes], candidate: Sequence[ImageBoxes], threshold: float) -> float:
    """Matched-detection F1 at IoU 0.5 between two models at the deployment score threshold."""
    return agreement_f1(at_threshold(reference, threshold), at_threshold(candidate, threshold))

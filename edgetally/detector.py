"""The detector: the one place where preprocess, runtime and decode meet.

    detector = Detector.from_artifact("artifacts/yolox_nano", threads=2, classes=["car", "truck"])
    detections = detector(frame.image)          # Detections in source pixels

A call is ``prepare -> infer -> decode``; the pipeline runs the three parts on different threads
(``prepare`` with its own ``Preprocessor`` per buffer slot), everything else just calls the object.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edgetally.artifact import Artifact, Manifest
from edgetally.errors import ConfigError
from edgetally.postprocess import Decoder, build_decoder
from edgetally.preprocess import Letterbox, Preprocessor
from edgetally.runtimes import Runtime, load_runtime
from edgetally.structures import Detections


class Detector:
    """A loaded artifact: BGR image -> ``Detections`` in source pixels, filtered to ``classes``.

    ``score_threshold`` / ``max_detections`` default to the manifest's; ``classes`` (names) keeps
    only those classes (None: all). ``low_score``: also decode the boxes down to this score, which
    ``with_low=True`` returns: a ByteTrack-style tracker keeps its tracks alive with them
    (``TrackerConfig.low_score``), while what is reported stays at ``score_threshold``. Not
    thread-safe: one caller at a time, or use ``prepare`` with a ``Preprocessor`` per thread
    (``new_preprocessor()``), as the pipeline does.
    """

    def __init__(
        self,
        artifact: Artifact,
        runtime: Runtime,
        *,
        score_threshold: float | None = None,
        max_detections: int | None = None,
        classes: Iterable[str] | None = None,
        low_score: float | None = None,
    ) -> None:
        self.artifact = artifact
        self.runtime = runtime
        reported = artifact.manifest.decoder.score_threshold if score_threshold is None else score_threshold
        self.score_threshold = float(reported)
        floor = self.score_threshold if low_score is None else min(self.score_threshold, float(low_score))
        # Greedy NMS never lets a lower-scoring box suppress a higher one, so decoding down to the
        # floor and filtering gives exactly the boxes a decoder at score_threshold would.
        self._decode: Decoder = build_decoder(artifact.manifest, floor, max_detections)
        self._preprocess = self.new_preprocessor()
        self._keep: np.ndarray | None = None
        self.set_classes(classes)

    @classmethod
    def from_artifact(
        cls,
        path: str | Path,
        *,
        runtime: str | None = None,
        threads: int = 2,
        score_threshold: float | None = None,
        max_detections: int | None = None,
        classes: Iterable[str] | None = None,
        low_score: float | None = None,
    ) -> Detector:
        """Load the artifact directory ``path`` with its manifest's runtime (or ``runtime``)."""
        artifact = Artifact.load(Path(path))
        return cls(
            artifact,
            load_runtime(artifact, threads=threads, runtime=runtime),
            score_threshold=score_threshold,
            max_detections=max_detections,
            classes=classes,
            low_score=low_score,
        )

    @property
    def manifest(self) -> Manifest:
        return self.artifact.manifest

    @property
    def labels(self) -> list[str]:
        return list(self.artifact.manifest.labels)

    def set_classes(self, classes: Iterable[str] | None) -> None:
        """Keep only these class names (None or empty: keep every class)."""
        self._keep = class_mask(classes, self.labels)

    def __call__(self, image: np.ndarray, *, with_low: bool = False) -> Detections:
        """image: (H, W, 3) uint8 BGR -> Detections in the image's pixels (``with_low``: down to
        ``low_score``, for a tracker)."""
        tensor, letterbox = self._preprocess(image)
        return self.decode(self.infer(tensor), letterbox, with_low=with_low)

    def batch(self, images: Iterable[np.ndarray]) -> list[Detections]:
        """One Detections per image (the artifacts are batch-1 models: run one after another)."""
        return [self(image) for image in images]

    def new_preprocessor(self) -> Preprocessor:
        """A Preprocessor with its own buffers, for a thread or ring slot of its own."""
        return Preprocessor(self.artifact.manifest.input)

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the model on a prepared tensor; outputs in the manifest's order, dequantised."""
        return self.runtime.infer(tensor)

    def decode(self, outputs: list[np.ndarray], letterbox: Letterbox, *, with_low: bool = False) -> Detections:
        """Raw outputs -> Detections in source pixels, NMS applied, class filter applied; scores
        >= score_threshold, or (``with_low``) >= low_score: ``reported`` keeps the former."""
        detections = self._decode(outputs, letterbox)
        if self._keep is not None and len(detections):
            detections = detections.select(self._keep[detections.class_ids])
        return detections if with_low else self.reported(detections)

    def reported(self, detections: Detections) -> Detections:
        """The boxes of ``detections`` at or above score_threshold: what outputs and sinks get."""
        if not len(detections) or detections.scores.min() >= self.score_threshold:
            return detections
        return detections.select(detections.scores >= self.score_threshold)

    def close(self) -> None:
        self.runtime.close()


def class_mask(classes: Iterable[str] | None, labels: list[str]) -> np.ndarray | None:
    """Boolean lookup table class_id -> keep, or None to keep everything."""
    wanted = list(classes or [])
    if not wanted:
        return None
    unknown = [c for c in wanted if c not in labels]
    if unknown:
        raise ConfigError(f"classes: unknown class name(s) {unknown}; the model knows: {', '.join(labels)}")
    keep = np.zeros(len(labels), dtype=bool)
    keep[[labels.index(c) for c in wanted]] = True
    return keep

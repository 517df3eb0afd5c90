"""Raw model outputs -> Detections: decoders per output family, numpy NMS, box geometry.

numpy only: no cv2, no runtime (enforced by the import-boundary test). ``DECODERS`` is the one list
of families: manifests, ``edge convert --decoder`` and the converter's preprocessing defaults read
it. Adding a family is one module with a ``Decoder`` subclass plus its line here.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgetally.artifact import Manifest
from edgetally.errors import ArtifactError
from edgetally.postprocess.boxes_scores import BoxesScoresDecoder
from edgetally.postprocess.decoders import Decoder
from edgetally.postprocess.nms import batched_nms, box_iou, cross_class_duplicates, nms
from edgetally.postprocess.yolov8 import Yolov8Decoder
from edgetally.postprocess.yolox import YoloxDecoder

DECODERS: dict[str, type[Decoder]] = {d.family: d for d in (YoloxDecoder, Yolov8Decoder, BoxesScoresDecoder)}


def decoder_class(family: str) -> type[Decoder]:
    if family not in DECODERS:
        raise ArtifactError(f"decoder family '{family}' is not known; known: {', '.join(sorted(DECODERS))}")
    return DECODERS[family]


def build_decoder(
    manifest: Manifest, score_threshold: float | None = None, max_detections: int | None = None
) -> Decoder:
    """The decoder for ``manifest.decoder.family``; thresholds default to the manifest's."""
    return decoder_class(manifest.decoder.family)(manifest, score_threshold, max_detections)


def validate_output_shapes(manifest: Manifest, shapes: Sequence[Sequence[int]]) -> None:
    """Raise ``ArtifactError`` explaining why ``shapes`` (one per manifest output) do not fit the decoder."""
    shape_list = [tuple(int(d) for d in s) for s in shapes]
    if len(shape_list) != len(manifest.outputs):
        raise ArtifactError(f"the model has {len(shape_list)} outputs but the manifest lists {len(manifest.outputs)}")
    decoder_class(manifest.decoder.family).check_shapes(manifest, shape_list)


__all__ = [
    "DECODERS",
    "Decoder",
    "batched_nms",
    "box_iou",
    "build_decoder",
    "cross_class_duplicates",
    "decoder_class",
    "nms",
    "validate_output_shapes",
]

"""Raw model outputs -> Detections: decoders per output family, numpy NMS, box geometry.

numpy only: no cv2, no runtime (enforced by the import-boundary test).
"""

from __future__ import annotations

from edgetally.postprocess.decoders import Decoder, build_decoder
from edgetally.postprocess.nms import batched_nms, box_iou, cross_class_duplicates, nms
from edgetally.postprocess.shapes import validate_output_shapes

__all__ = ["Decoder", "batched_nms", "box_iou", "build_decoder", "cross_class_duplicates", "nms", "validate_output_shapes"]

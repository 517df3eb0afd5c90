"""Frame -> input tensor, exactly as the manifest says. Used by the runner AND by calibration.

The Preprocessor keeps its output buffers between frames so the per-frame hot path allocates
almost nothing (one resize buffer when the source size changes).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgetally.artifact import InputSpec


@dataclass(frozen=True)
class Letterbox:
    """How a source image was placed into the input tensor: tensor_xy = src_xy * scale + pad."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    src_width: int
    src_height: int

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Map (N, 4) boxes from tensor pixels back to source pixels, clipped to the image. In place."""
        xyxy[:, [0, 2]] -= self.pad_x
        xyxy[:, [1, 3]] -= self.pad_y
        xyxy[:, [0, 2]] /= self.scale_x
        xyxy[:, [1, 3]] /= self.scale_y
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, self.src_width)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, self.src_height)
        return xyxy


class Preprocessor:
    """Letterbox/resize, colour order, mean/std, layout and dtype for one model input."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.height = spec.height
        self.width = spec.width
        self._canvas = np.full((self.height, self.width, 3), spec.pad_value, dtype=np.uint8)
        self._mean = np.asarray(spec.mean, dtype=np.float32)
        self._inv_std = 1.0 / np.asarray(spec.std, dtype=np.float32)
        self._identity_norm = bool(np.all(self._mean == 0) and np.all(self._inv_std == 1))
        self._float = np.empty((self.height, self.width, 3), dtype=np.float32)
        shape = tuple(spec.shape)
        self._tensor = np.empty(shape, dtype=np.dtype(spec.dtype))
        self._placed: tuple[int, int] | None = None  # source size the canvas padding was drawn for

    def letterbox_for(self, src_width: int, src_height: int) -> Letterbox:
        if self.spec.resize == "stretch":
            return Letterbox(self.width / src_width, self.height / src_height, 0.0, 0.0, src_width, src_height)
        scale = min(self.width / src_width, self.height / src_height)
        new_w, new_h = int(round(src_width * scale)), int(round(src_height * scale))
        if self.spec.letterbox_align == "center":
            pad_x, pad_y = (self.width - new_w) // 2, (self.height - new_h) // 2
        else:
            pad_x, pad_y = 0, 0
        return Letterbox(scale, scale, float(pad_x), float(pad_y), src_width, src_height)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """image: (H, W, 3) uint8 BGR -> (tensor shaped like the manifest input, Letterbox).

        The returned tensor is a buffer reused on the next call: consume it before calling again.
        """
        src_h, src_w = image.shape[:2]
        box = self.letterbox_for(src_w, src_h)
        self._place(image, box)
        canvas = self._canvas
        if self.spec.color == "RGB":
            canvas = canvas[:, :, ::-1]
        self._write_tensor(canvas)
        return self._tensor, box

    def _place(self, image: np.ndarray, box: Letterbox) -> None:
        new_w = int(round(box.src_width * box.scale_x))
        new_h = int(round(box.src_height * box.scale_y))
        x0, y0 = int(box.pad_x), int(box.pad_y)
        # The padding only changes with the source size; repainting it every frame is wasted work.
        if self._placed != (box.src_width, box.src_height):
            self._canvas[...] = self.spec.pad_value
            self._placed = (box.src_width, box.src_height)
        target = self._canvas[y0 : y0 + new_h, x0 : x0 + new_w]
        if (new_w, new_h) == (box.src_width, box.src_height):
            target[...] = image
        else:
            # INTER_LINEAR matches what YOLOX/Ultralytics used for training and export.
            target[...] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)

    def _write_tensor(self, canvas: np.ndarray) -> None:
        spec = self.spec
        if spec.quantization is None and self._identity_norm:
            # Common case (YOLOX: raw 0-255 BGR): one pass converts dtype and layout together.
            hwc = canvas
        else:
            np.copyto(self._float, canvas, casting="unsafe")
            if not self._identity_norm:
                self._float -= self._mean
                self._float *= self._inv_std
            if spec.quantization is not None:
                q = spec.quantization
                self._float /= q.scale
                self._float += q.zero_point
                info = np.iinfo(np.dtype(spec.dtype))
                np.clip(np.rint(self._float, out=self._float), info.min, info.max, out=self._float)
            hwc = self._float
        if spec.layout == "NCHW":
            np.copyto(self._tensor[0], hwc.transpose(2, 0, 1), casting="unsafe")
        else:
            np.copyto(self._tensor[0], hwc, casting="unsafe")

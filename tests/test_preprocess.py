"""Preprocessing: letterbox placement, padding, colour order, normalisation, layout, quantisation."""

from __future__ import annotations

import numpy as np
import pytest

from edgetally.artifact import InputSpec, Quantization
from edgetally.preprocess import Preprocessor


def _spec(**kw: object) -> InputSpec:
    base: dict[str, object] = {"name": "x", "shape": [1, 3, 8, 8]}
    base.update(kw)
    return InputSpec.model_validate(base)


def _image(h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30  # B, G, R
    return img


@pytest.mark.parametrize(
    ("src_hw", "align", "scale", "pad"),
    [
        ((4, 8), "top-left", 1.0, (0.0, 0.0)),
        ((4, 8), "center", 1.0, (0.0, 2.0)),
        ((16, 8), "top-left", 0.5, (0.0, 0.0)),
        ((16, 8), "center", 0.5, (2.0, 0.0)),
        ((8, 8), "center", 1.0, (0.0, 0.0)),
    ],
)
def test_letterbox_geometry(src_hw: tuple[int, int], align: str, scale: float, pad: tuple[float, float]) -> None:
    pre = Preprocessor(_spec(letterbox_align=align))
    _, box = pre(_image(*src_hw))
    assert (box.scale_x, box.scale_y, box.pad_x, box.pad_y) == (scale, scale, *pad)
    # Boxes map back to source pixels exactly.
    corners = np.array([[pad[0], pad[1], pad[0] + src_hw[1] * scale, pad[1] + src_hw[0] * scale]], np.float32)
    assert box.to_source(corners).tolist() == [[0, 0, src_hw[1], src_hw[0]]]


def test_padding_and_bgr_values_nchw() -> None:
    tensor, _ = Preprocessor(_spec(pad_value=114))(_image(4, 8))
    assert tensor.shape == (1, 3, 8, 8) and tensor.dtype == np.float32
    assert tensor[0, :, :4, :].reshape(3, -1).mean(axis=1).tolist() == [10, 20, 30]
    assert np.all(tensor[0, :, 4:, :] == 114)


def test_rgb_mean_std_nhwc() -> None:
    spec = _spec(shape=[1, 8, 8, 3], layout="NHWC", color="RGB", mean=[0, 0, 0], std=[255, 255, 255])
    tensor, _ = Preprocessor(spec)(_image(8, 8))
    assert tensor.shape == (1, 8, 8, 3)
    assert np.allclose(tensor[0, 0, 0], [30 / 255, 20 / 255, 10 / 255])


def test_int8_quantised_input() -> None:
    spec = _spec(dtype="int8", quantization=Quantization(scale=1 / 255, zero_point=-128), std=[255, 255, 255])
    tensor, _ = Preprocessor(spec)(_image(8, 8))
    assert tensor.dtype == np.int8
    assert tensor[0, :, 0, 0].tolist() == [10 - 128, 20 - 128, 30 - 128]


def test_padding_is_repainted_when_the_source_size_changes() -> None:
    pre = Preprocessor(_spec(pad_value=0))
    pre(np.full((8, 8, 3), 200, np.uint8))  # fills the whole canvas
    tensor, _ = pre(np.full((4, 8, 3), 50, np.uint8))  # now the bottom half must be padding again
    assert np.all(tensor[0, :, 4:, :] == 0) and np.all(tensor[0, :, :4, :] == 50)

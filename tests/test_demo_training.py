"""The demo detector's label assignment and the model's output layout (needs torch: skips without)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from training.demo_model import INPUT_HW, STRIDES, build_model
from training.train_demo_detector import anchor_grid, assign, giou

GRID = anchor_grid(INPUT_HW)


@pytest.mark.parametrize(
    ("box", "stride"),
    [
        ((100, 50, 120, 70), 8),  # 20 px: small -> stride 8
        ((100, 50, 160, 80), 16),  # 60 px
        ((100, 50, 190, 90), 32),  # 90 px
    ],
)
def test_each_box_goes_to_one_stride_and_owns_its_centre_cell(box, stride) -> None:
    owner, ignored = assign(np.array([box], np.float32), np.array([False]), GRID)
    pos = np.flatnonzero(owner == 0)
    assert pos.size >= 1 and set(GRID[2][pos].tolist()) == {stride}
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    centre = (GRID[0] == np.floor(cx / stride)) & (GRID[1] == np.floor(cy / stride)) & (GRID[2] == stride)
    assert owner[centre].tolist() == [0]
    assert not ignored.any()


def test_ignored_boxes_give_no_positives_and_mask_their_anchors() -> None:
    boxes = np.array([[100, 50, 120, 70], [200, 100, 240, 120]], np.float32)
    owner, ignored = assign(boxes, np.array([False, True]), GRID)
    assert set(owner[owner >= 0].tolist()) == {0}
    assert ignored.any() and not (ignored & (owner >= 0)).any()


def test_overlapping_boxes_the_smaller_one_wins_shared_anchors() -> None:
    boxes = np.array([[96, 40, 136, 80], [104, 48, 124, 68]], np.float32)  # the second inside the first
    owner, _ = assign(boxes, np.array([False, False]), GRID)
    assert (owner == 1).any()


def test_giou_of_identical_boxes_is_one_and_of_far_boxes_negative() -> None:
    import torch

    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    b = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    g = giou(a, b)
    assert g[0].item() == pytest.approx(1.0) and g[1].item() < 0


def test_export_output_is_the_yolox_raw_head_layout() -> None:
    import torch

    model = build_model(export=True).eval()
    with torch.no_grad():
        out = model(torch.full((1, 3, *INPUT_HW), 114.0))
    anchors = sum((INPUT_HW[0] // s) * (INPUT_HW[1] // s) for s in STRIDES)
    assert out.shape == (1, anchors, 9)
    assert float(out[..., 4:].min()) >= 0 and float(out[..., 4:].max()) <= 1  # sigmoid in the graph

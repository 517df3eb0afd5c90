"""Target assignment and loss for a YOLOX-layout head (both families `edge train` fine-tunes).

Assignment is a simplified SimOTA (YOLOX's): an anchor is a candidate for a ground-truth box when
its cell centre lies inside the box or within ``CENTRE_RADIUS`` strides of the box centre, on any
level; among the candidates each box takes its ``k`` cheapest anchors, cost = class cost + 3 x
(-log IoU of the anchor's current prediction) + a large penalty unless the anchor is both inside
the box and near its centre; ``k`` = the sum of the box's ten best IoUs (at least 1), so a box the
model already fits well gets more positives. An anchor claimed by two boxes goes to the cheaper.
The cost uses the model's own predictions, so it runs without gradients.

Loss over a batch, normalised by the number of positives: 5 x (1 - GIoU) on positive boxes, BCE on
objectness for every anchor (1 for positives), BCE on classes for positives with the one-hot
target scaled by the IoU the prediction reaches (YOLOX's IoU-aware class target).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

CENTRE_RADIUS = 2.5
TOPK_IOU = 10
BOX_WEIGHT = 5.0


def anchor_grid(input_hw: tuple[int, int], strides: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (cell indices (A, 2) x, y; strides (A,)), in the head's order (stride by stride, row by row)."""
    cells, sizes = [], []
    for s in strides:
        rows, cols = -(-input_hw[0] // s), -(-input_hw[1] // s)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
        sizes.append(np.full(rows * cols, s))
    return torch.from_numpy(np.concatenate(cells)).float(), torch.from_numpy(np.concatenate(sizes)).float()


def decode_boxes(raw: torch.Tensor, cells: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """(..., A, 4) raw x, y, log w, log h -> xyxy in input pixels (the yolox decoder's formula)."""
    cxcy = (raw[..., :2] + cells) * strides[:, None]
    wh = torch.exp(raw[..., 2:4].clamp(max=8.0)) * strides[:, None]
    return torch.cat([cxcy - wh / 2, cxcy + wh / 2], dim=-1)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of matching rows of (N, 4) xyxy boxes."""
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    union = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1) + (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1) - inter
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).prod(1)
    return inter / union.clamp(min=1e-6) - (hull - union) / hull.clamp(min=1e-6)


@torch.no_grad()
def assign(
    gt: torch.Tensor,
    gt_cls: torch.Tensor,
    boxes: torch.Tensor,
    obj: torch.Tensor,
    cls: torch.Tensor,
    cells: torch.Tensor,
    strides: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image. gt (G, 4) xyxy, gt_cls (G,); boxes (A, 4) decoded predictions; obj (A,), cls (A, C)
    logits. -> (owner (A,) gt index or -1, iou (A,) of each positive's prediction with its box)."""
    a = boxes.shape[0]
    owner = torch.full((a,), -1, dtype=torch.long)
    iou_out = torch.zeros(a)
    if gt.shape[0] == 0:
        return owner, iou_out
    centre = (cells + 0.5) * strides[:, None]
    inside = ((centre[None] > gt[:, None, :2]) & (centre[None] < gt[:, None, 2:])).all(-1)
    gc = (gt[:, :2] + gt[:, 2:]) / 2
    near = ((centre[None] - gc[:, None]).abs() < CENTRE_RADIUS * strides[None, :, None]).all(-1)
    candidate = (inside | near).any(0)
    if not candidate.any():
        return owner, iou_out
    idx = torch.nonzero(candidate).squeeze(1)
    ious = pairwise_iou(gt, boxes[idx])
    score = (torch.sigmoid(cls[idx]) * torch.sigmoid(obj[idx])[:, None]).sqrt()
    target = F.one_hot(gt_cls, cls.shape[1]).float()
    cls_cost = F.binary_cross_entropy(
        score[None].expand(gt.shape[0], -1, -1).clamp(1e-6, 1 - 1e-6),
        target[:, None].expand(-1, idx.shape[0], -1),
        reduction="none",
    ).sum(-1)
    cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * ~(inside[:, idx] & near[:, idx])
    k = ious.topk(min(TOPK_IOU, idx.shape[0]), dim=1).values.sum(1).int().clamp(min=1)
    chosen = torch.zeros_like(cost, dtype=torch.bool)
    for g in range(gt.shape[0]):
        chosen[g, cost[g].topk(int(k[g]), largest=False).indices] = True
    cost = torch.where(chosen, cost, torch.full_like(cost, float("inf")))
    best_cost, best_gt = cost.min(0)
    keep = torch.isfinite(best_cost)
    owner[idx[keep]] = best_gt[keep]
    iou_out[idx[keep]] = ious[best_gt[keep], torch.nonzero(keep).squeeze(1)]
    return owner, iou_out


def detection_loss(
    raw: torch.Tensor, targets: Sequence[tuple[torch.Tensor, torch.Tensor]], cells: torch.Tensor, strides: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """raw (B, A, 5 + C) head logits; targets per image (boxes (G, 4) input px, class ids (G,))."""
    boxes = decode_boxes(raw[..., :4], cells, strides)
    obj_target = torch.zeros(raw.shape[:2])
    pos_box, pos_gt, pos_cls, pos_tcls = [], [], [], []
    for i, (gt, gt_cls) in enumerate(targets):
        owner, iou = assign(
            gt, gt_cls, boxes[i].detach(), raw[i, :, 4].detach(), raw[i, :, 5:].detach(), cells, strides
        )
        fg = owner >= 0
        obj_target[i, fg] = 1.0
        pos_box.append(boxes[i, fg])
        pos_gt.append(gt[owner[fg]])
        pos_cls.append(raw[i, fg, 5:])
        pos_tcls.append(F.one_hot(gt_cls[owner[fg]], raw.shape[2] - 5).float() * iou[fg, None])
    n = max(sum(int(b.shape[0]) for b in pos_box), 1)
    l_obj = F.binary_cross_entropy_with_logits(raw[..., 4], obj_target, reduction="sum") / n
    pb, pg = torch.cat(pos_box), torch.cat(pos_gt)
    l_box = (1.0 - giou(pb, pg)).sum() / n if pb.shape[0] else raw.sum() * 0.0
    l_cls = (
        F.binary_cross_entropy_with_logits(torch.cat(pos_cls), torch.cat(pos_tcls), reduction="sum") / n
        if pb.shape[0]
        else raw.sum() * 0.0
    )
    total = BOX_WEIGHT * l_box + l_obj + l_cls
    return total, {"box": l_box.item(), "obj": l_obj.item(), "cls": l_cls.item(), "pos": n / max(len(targets), 1)}

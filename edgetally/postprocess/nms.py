"""Box geometry and non-maximum suppression in numpy.

All boxes are ``(N, 4)`` float arrays in ``x1, y1, x2, y2`` order. Greedy NMS suppresses a box
when its IoU with a higher-scoring kept box is strictly greater than the threshold (the
torchvision convention). Per-class NMS runs all classes in one pass: up to MATRIX_NMS_MAX boxes
with an IoU matrix masked to same-class pairs, above that with the coordinate-offset trick (every
class shifted to its own region of the plane, so boxes of different classes never interact).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Boxes = npt.NDArray[np.floating]


def box_area(xyxy: Boxes) -> np.ndarray:
    """(N, 4) -> (N,) areas; degenerate boxes (x2 < x1 or y2 < y1) have area 0."""
    widths = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None)
    heights = np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
    return widths * heights


def box_intersection(a: Boxes, b: Boxes) -> np.ndarray:
    """Pairwise intersection areas: (N, 4), (M, 4) float boxes -> (N, M)."""
    # Outer products of contiguous columns: several times faster than broadcasting (N, 1, 2) x (1, M, 2).
    ax1, ay1, ax2, ay2 = (np.ascontiguousarray(a[:, i]) for i in range(4))
    bx1, by1, bx2, by2 = (np.ascontiguousarray(b[:, i]) for i in range(4))
    widths = np.minimum.outer(ax2, bx2) - np.maximum.outer(ax1, bx1)
    heights = np.minimum.outer(ay2, by2) - np.maximum.outer(ay1, by1)
    np.clip(widths, 0, None, out=widths)
    np.clip(heights, 0, None, out=heights)
    return widths * heights


def box_iou(a: Boxes, b: Boxes) -> np.ndarray:
    """Pairwise IoU: (N, 4), (M, 4) -> (N, M). Pairs with zero union get IoU 0."""
    a, b = _as_float_boxes(a), _as_float_boxes(b)
    inter = box_intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _iou_one_to_many(box: np.ndarray, area: float, others: np.ndarray, other_areas: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = area + other_areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# Up to this many boxes, one IoU matrix (a few MB) beats a Python loop of small numpy calls.
MATRIX_NMS_MAX = 512


def nms(xyxy: Boxes, scores: np.ndarray, iou_threshold: float, max_output: int | None = None) -> np.ndarray:
    """Class-agnostic greedy NMS -> int64 indices of kept boxes, highest score first.

    xyxy: (N, 4); scores: (N,). Ties in score keep the lower index first (stable sort).
    """
    boxes = _as_float_boxes(xyxy)
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    limit = _limit(boxes.shape[0], max_output)
    if boxes.shape[0] <= MATRIX_NMS_MAX:
        sorted_boxes = boxes[order]
        kept = _greedy_scan(box_iou(sorted_boxes, sorted_boxes) > iou_threshold, limit)
    else:
        kept = _greedy_with_loop(boxes[order], iou_threshold, limit)
    return order[kept]


def batched_nms(
    xyxy: Boxes,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    class_agnostic: bool = False,
    max_output: int | None = None,
) -> np.ndarray:
    """NMS within each class (or across classes when ``class_agnostic``) -> kept indices, best first.

    Up to MATRIX_NMS_MAX boxes: one IoU matrix masked to same-class pairs. Above: one loop NMS
    pass with every box shifted by ``class_id * span`` (``span`` exceeds the extent of all boxes),
    so boxes of different classes can never overlap.
    """
    boxes = _as_float_boxes(xyxy)
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if class_agnostic:
        return nms(boxes, scores, iou_threshold, max_output)
    classes = np.asarray(class_ids)
    if boxes.shape[0] > MATRIX_NMS_MAX:
        # float64 so that large offsets (class 79 x a 4000 px span) keep sub-pixel precision.
        span = float(boxes.max() - boxes.min()) + 1.0
        offsets = classes.astype(np.float64)[:, None] * span
        return nms(boxes + offsets, scores, iou_threshold, max_output)
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    sorted_boxes, sorted_classes = boxes[order], classes[order]
    overlaps = box_iou(sorted_boxes, sorted_boxes) > iou_threshold
    overlaps &= sorted_classes[:, None] == sorted_classes[None, :]
    return order[_greedy_scan(overlaps, _limit(boxes.shape[0], max_output))]


def cross_class_duplicates(xyxy: Boxes, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Boolean mask (N,) of boxes to keep after dropping every box that overlaps a higher-scoring
    box of ANOTHER class by IoU >= iou_threshold: per-class NMS keeps a "car" and a "truck" box
    on one vehicle, and a tracker would start two tracks (two counts) from them. Greedy, best
    first, so a dropped box never drops another."""
    boxes = _as_float_boxes(xyxy)
    n = boxes.shape[0]
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    classes = np.asarray(class_ids)
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    overlaps = box_iou(boxes[order], boxes[order]) >= iou_threshold
    overlaps &= classes[order][:, None] != classes[order][None, :]
    if not overlaps.any():
        return keep
    keep[order] = np.isin(np.arange(n), _greedy_scan(np.triu(overlaps, k=1), n))
    return keep


def contained_duplicates(xyxy: Boxes, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask (N,) of boxes to keep after dropping every box that shares ``threshold`` of
    the SMALLER box's area with a higher-scoring kept box, whatever the classes: a fine-tuned
    detector on a top-down view boxes a vehicle's half or a truck's cab inside the whole vehicle
    (IoU small, one object, two tracks, two counts), or one box over two bicycles side by side.
    Only for views where real objects do not overlap much (top-down, conveyors): in a
    perspective view a car half hidden behind another is a real box. Greedy, best first."""
    boxes = _as_float_boxes(xyxy)
    n = boxes.shape[0]
    keep = np.ones(n, dtype=bool)
    if n < 2 or threshold <= 0.0:
        return keep
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    b = boxes[order]
    area = box_area(b)
    smaller = np.maximum(np.minimum.outer(area, area), 1e-9)
    overlaps = np.triu(box_intersection(b, b) / smaller >= threshold, k=1)
    if overlaps.any():
        keep[order] = np.isin(np.arange(n), _greedy_scan(overlaps, n))
    return keep


def _limit(n: int, max_output: int | None) -> int:
    return n if max_output is None else max(0, int(max_output))


def _greedy_scan(overlaps: np.ndarray, limit: int) -> np.ndarray:
    """overlaps[i, j]: box i (sorted best first) suppresses box j -> positions kept."""
    suppressed = np.zeros(overlaps.shape[0], dtype=bool)
    keep: list[int] = []
    for i in range(overlaps.shape[0]):
        if len(keep) >= limit:
            break
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return np.asarray(keep, dtype=np.int64)


def _greedy_with_loop(boxes: np.ndarray, iou_threshold: float, limit: int) -> np.ndarray:
    """boxes sorted best first -> positions kept, without an N x N matrix (large N)."""
    areas = box_area(boxes)
    remaining = np.arange(boxes.shape[0])
    keep: list[int] = []
    while remaining.size and len(keep) < limit:
        best = int(remaining[0])
        keep.append(best)
        rest = remaining[1:]
        iou = _iou_one_to_many(boxes[best], float(areas[best]), boxes[rest], areas[rest])
        remaining = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _as_float_boxes(xyxy: Boxes) -> np.ndarray:
    boxes = np.asarray(xyxy).reshape(-1, 4)
    if boxes.dtype not in (np.float32, np.float64):
        boxes = boxes.astype(np.float32)
    return boxes

"""COCO-style detection metrics in numpy: mAP50-95 / mAP50 per class, and label-free agreement.

The AP follows pycocotools' COCOeval for ``iouType='bbox'`` with one area range ("all"):
per (image, class) the top ``max_detections`` detections by score are greedily matched to the
highest-IoU unmatched ground truth at each IoU threshold .50:.05:.95; crowd boxes are "ignore"
regions (a detection on one is neither TP nor FP); precision is made monotone and sampled at 101
recall points. Re-implemented rather than imported so the gate has no pycocotools dependency and
can read YOLO-format labels; ``tests/test_int8_metrics.py`` cross-checks it against the COCO json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class ImageBoxes:
    """Ground truth or detections for one image. xyxy (N, 4) pixels; scores only for detections."""

    xyxy: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray | None = None
    crowd: np.ndarray | None = None  # bool (N,): COCO iscrowd ground truth, matched but ignored


@dataclass(frozen=True)
class MapResult:
    map50_95: float
    map50: float
    per_class: dict[int, tuple[float, float]] = field(default_factory=dict)  # class -> (AP50-95, AP50)

    def as_dict(self, labels: Sequence[str] | None = None) -> dict:
        def name(c: int) -> str:
            return labels[c] if labels is not None and c < len(labels) else str(c)

        return {
            "map50_95": round(self.map50_95, 5),
            "map50": round(self.map50, 5),
            "per_class": {
                name(c): {"ap50_95": round(a, 5), "ap50": round(b, 5)} for c, (a, b) in self.per_class.items()
            },
        }


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes (COCO convention: no +1 on widths)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def _crowd_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """COCO's IoU: against a crowd box the denominator is the detection's own area."""
    iou = box_iou(dt, gt)
    if crowd.any() and len(dt):
        lt = np.maximum(dt[:, None, :2], gt[None, crowd, :2])
        rb = np.minimum(dt[:, None, 2:], gt[None, crowd, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
        area_d = np.prod(np.clip(dt[:, 2:] - dt[:, :2], 0, None), axis=1)
        iou[:, crowd] = inter / np.maximum(area_d[:, None], 1e-12)
    return iou


def _match_one(dt_xyxy: np.ndarray, gt_xyxy: np.ndarray, crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching for one (image, class); detections already sorted by score.

    Returns (matched (T, D) bool, ignored (T, D) bool) for the T IoU thresholds.
    """
    n_t, n_d = len(IOU_THRESHOLDS), len(dt_xyxy)
    matched = np.zeros((n_t, n_d), dtype=bool)
    ignored = np.zeros((n_t, n_d), dtype=bool)
    if n_d == 0 or len(gt_xyxy) == 0:
        return matched, ignored
    order = np.argsort(crowd, kind="mergesort")  # non-crowd first, as COCOeval sorts gtIg
    gt_xyxy, crowd = gt_xyxy[order], crowd[order]
    ious = _crowd_iou(dt_xyxy, gt_xyxy, crowd)
    for t_index, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gt_xyxy), dtype=bool)
        for d in range(n_d):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in range(len(gt_xyxy)):
                if taken[g] and not crowd[g]:
                    continue
                if best > -1 and not crowd[best] and crowd[g]:
                    break  # a real match beats any crowd region
                if ious[d, g] < best_iou:
                    continue
                best, best_iou = g, ious[d, g]
            if best >= 0:
                taken[best] = True
                matched[t_index, d] = not crowd[best]
                ignored[t_index, d] = crowd[best]
    return matched, ignored


def _average_precision(tp: np.ndarray, fp: np.ndarray, n_gt: float) -> np.ndarray:
    """101-point interpolated AP per IoU threshold (COCOeval.accumulate) from score-sorted TP/FP
    weights (T, D): 1 per detection, or how many times its image was drawn in a resample. A
    drawn image's copies share their scores, so each copy's points of the PR curve fall inside
    one run of equal scores, where the weighted sums give the curve's only points that matter."""
    tp_sum, fp_sum = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    recall = tp_sum / n_gt
    precision = tp_sum / np.maximum(tp_sum + fp_sum, np.spacing(1))
    out = np.zeros(tp.shape[0])
    if tp.shape[1] == 0:
        return out
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    for t in range(tp.shape[0]):
        inds = np.searchsorted(recall[t], RECALL_POINTS, side="left")
        valid = inds < precision.shape[1]
        out[t] = precision[t, inds[valid]].sum() / len(RECALL_POINTS)
    return out


@dataclass(frozen=True)
class _ClassMatches:
    """One class's detections over every image, matched once: sorted by score (ties in image
    order), which image each came from, TP / FP flags per IoU threshold (crowd hits are neither)
    and each image's count of non-crowd ground truth."""

    image: np.ndarray  # (D,) int
    tp: np.ndarray  # (T, D) bool
    fp: np.ndarray  # (T, D) bool
    n_gt: np.ndarray  # (images,) int

    def ap(self, weights: np.ndarray | None) -> np.ndarray | None:
        """AP per IoU threshold (T,) with image i counted weights[i] times (None: once each);
        None if the class has no ground truth among the images counted."""
        n_gt = float(self.n_gt.sum() if weights is None else weights @ self.n_gt)
        if n_gt == 0:
            return None
        w = np.ones(self.image.shape[0]) if weights is None else weights[self.image].astype(np.float64)
        return _average_precision(self.tp * w, self.fp * w, n_gt)


def _class_matches(cls: int, gts: Sequence[ImageBoxes], dets: Sequence[ImageBoxes], max_det: int) -> _ClassMatches:
    scores, matched, ignored, images, n_gt = [], [], [], [], []
    for i, (gt, dt) in enumerate(zip(gts, dets)):
        g_mask = gt.class_ids == cls
        crowd = (
            np.asarray(gt.crowd, dtype=bool)[g_mask]
            if gt.crowd is not None
            else np.zeros(int(g_mask.sum()), dtype=bool)
        )
        n_gt.append(int((~crowd).sum()))
        d_mask = dt.class_ids == cls
        d_scores = dt.scores[d_mask]
        order = np.argsort(-d_scores, kind="mergesort")[:max_det]
        m, ig = _match_one(dt.xyxy[d_mask][order], gt.xyxy[g_mask], crowd)
        scores.append(d_scores[order])
        matched.append(m)
        ignored.append(ig)
        images.append(np.full(len(order), i))
    order = np.argsort(-np.concatenate(scores), kind="mergesort")
    m = np.concatenate(matched, axis=1)[:, order]
    ig = np.concatenate(ignored, axis=1)[:, order]
    return _ClassMatches(np.concatenate(images)[order], m & ~ig, ~m & ~ig, np.array(n_gt))


class MatchTable:
    """Every (image, class) matched once; mAP of all the images or of any resample of them."""

    def __init__(self, gts: Sequence[ImageBoxes], dets: Sequence[ImageBoxes], max_det: int = 100) -> None:
        if len(gts) != len(dets):
            raise ValueError(f"expected one detection set per ground-truth image: {len(gts)} vs {len(dets)}")
        self.num_images = len(gts)
        self._gts, self._dets, self._max_det = tuple(gts), tuple(dets), max_det
        classes = sorted({int(c) for g in gts for c in g.class_ids})
        self._classes = {cls: _class_matches(cls, gts, dets, max_det) for cls in classes}

    @classmethod
    def pooled(cls, tables: Sequence[MatchTable]) -> MatchTable:
        """One table over every image of ``tables`` (matched again: a class one table lacks ground
        truth for may still have detections there, false positives once pooled)."""
        return cls(
            [g for t in tables for g in t._gts], [d for t in tables for d in t._dets], max(t._max_det for t in tables)
        )

    def objects(self) -> dict[int, int]:
        """Non-crowd ground-truth objects per class, over the classes mAP averages (those with any)."""
        counts = {cls: int(matches.n_gt.sum()) for cls, matches in self._classes.items()}
        return {cls: n for cls, n in counts.items() if n > 0}

    def evaluate(self, weights: np.ndarray | None = None) -> MapResult:
        """mAP over the classes with ground truth; ``weights[i]``: how often image i counts."""
        per_class: dict[int, tuple[float, float]] = {}
        for cls, matches in self._classes.items():
            ap = matches.ap(weights)
            if ap is not None:
                per_class[cls] = (float(ap.mean()), float(ap[0]))
        if not per_class:
            return MapResult(0.0, 0.0, {})
        values = np.array(list(per_class.values()))
        return MapResult(float(values[:, 0].mean()), float(values[:, 1].mean()), per_class)


def mean_average_precision(gts: Sequence[ImageBoxes], dets: Sequence[ImageBoxes], max_det: int = 100) -> MapResult:
    """COCO mAP50-95 and mAP50 over classes that have ground truth; ``gts[i]`` pairs with ``dets[i]``."""
    return MatchTable(gts, dets, max_det).evaluate()


def drop_interval(
    reference: MatchTable,
    candidate: MatchTable,
    resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Paired bootstrap interval of the mAP50-95 drop (reference - candidate, a fraction) over the
    images: both models scored on the same resamples of the images (drawn with replacement), so
    what the interval shows is how much the drop depends on which images happened to be judged.
    ``groups[i]``: which image table entry i is a view of (a mirrored copy goes with its image:
    views of one image are not independent draws); None: every entry is its own image."""
    if reference.num_images != candidate.num_images:
        raise ValueError(f"paired images needed: {reference.num_images} vs {candidate.num_images}")
    if groups is None:
        groups = np.arange(reference.num_images)
    if len(groups) != reference.num_images:
        raise ValueError(f"one group per table entry needed: {len(groups)} vs {reference.num_images}")
    n = int(groups.max()) + 1 if len(groups) else 0
    rng = np.random.default_rng(seed)
    drops = np.empty(resamples)
    for b in range(resamples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n)[groups]
        drops[b] = reference.evaluate(weights).map50_95 - candidate.evaluate(weights).map50_95
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(drops, [tail, 100.0 - tail])
    return float(lo), float(hi)


def agreement_f1(reference: Sequence[ImageBoxes], candidate: Sequence[ImageBoxes], iou: float = 0.5) -> float:
    """Label-free agreement: F1 of candidate detections matched to reference ones (same class, IoU >= iou).

    Greedy by candidate score, one-to-one. Two empty sets agree perfectly (F1 1.0).
    """
    tp = n_ref = n_cand = 0
    for ref, cand in zip(reference, candidate):
        n_ref, n_cand = n_ref + len(ref.xyxy), n_cand + len(cand.xyxy)
        if len(ref.xyxy) == 0 or len(cand.xyxy) == 0:
            continue
        ious = box_iou(cand.xyxy, ref.xyxy)
        ious[cand.class_ids[:, None] != ref.class_ids[None, :]] = 0.0
        order = np.argsort(-cand.scores, kind="mergesort") if cand.scores is not None else range(len(cand.xyxy))
        taken = np.zeros(len(ref.xyxy), dtype=bool)
        for d in order:
            row = np.where(taken, -1.0, ious[d])
            g = int(np.argmax(row))
            if row[g] >= iou:
                taken[g] = True
                tp += 1
    if n_ref + n_cand == 0:
        return 1.0
    return 2.0 * tp / (n_ref + n_cand)

"""The fine-tuning loop: augmentation, a wall-time budget, a progress bar, early stopping on validation mAP.

The learning-rate schedule (warm-up, then cosine) follows whichever runs out first, iterations or
time, so a loaded machine still gets a full schedule. Validation runs every ``eval_every_s`` seconds
on the untouched validation frames (the project's COCO metric, in input-tensor pixels: a letterbox is
a uniform scale, so IoUs and mAP are the source image's); the best weights are kept and training
stops after ``patience`` evaluations without a better mAP50-95. BatchNorm statistics stay frozen:
a few dozen frames in batches of 8 are too few to re-estimate them.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from edgetally.artifact import InputSpec
from edgetally.converters.accuracy.metrics import ImageBoxes, mean_average_precision
from edgetally.errors import UsageError
from edgetally.postprocess import batched_nms
from edgetally.preprocess import Preprocessor
from edgetally.train.augment import AugmentConfig, augment
from edgetally.train.dataset import Item
from edgetally.train.loss import anchor_grid, detection_loss
from edgetally.train.model import Trainable

MIN_STEPS = 5  # a budget that cannot fit this many steps and two evaluations is refused
EVAL_NMS_IOU = 0.45  # the yolox decoder's default
EVAL_SCORE = 0.001


@dataclass(frozen=True)
class TrainConfig:
    budget_s: float = 900.0
    batch: int = 8
    lr: float = 1e-3
    patience: int = 4
    eval_every_s: float | None = None  # default: a tenth of the budget (at least 15 s)
    max_iters: int = 100_000
    seed: int = 0
    freeze: float = 0.5  # share of the convolutions (early, high-resolution ones) left as they are
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def eval_interval(self) -> float:
        return self.eval_every_s if self.eval_every_s is not None else max(15.0, self.budget_s / 10)


@dataclass
class FitResult:
    iterations: int = 0
    seconds: float = 0.0
    stopped: str = ""
    best: dict[str, float] = field(default_factory=dict)  # iteration, map50, map50_95
    history: list[dict[str, float]] = field(default_factory=list)


class Letterboxer:
    """Source image -> (1, 3, H, W) float32 tensor + box mapping, exactly as the runner letterboxes."""

    def __init__(self, input_hw: tuple[int, int]) -> None:
        self._pre = Preprocessor(InputSpec(name="images", shape=[1, 3, *input_hw]))

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tensor, lb = self._pre(image)
        mapped = boxes * np.float32(lb.scale_x)
        mapped[:, [0, 2]] += lb.pad_x
        mapped[:, [1, 3]] += lb.pad_y
        return tensor[0].copy(), mapped.astype(np.float32)


def lr_at(progress: float, base: float, warmup: float = 0.05) -> float:
    if progress < warmup:
        return base * (0.1 + 0.9 * progress / warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup)))))


def decode(
    output: np.ndarray, cells: np.ndarray, strides: np.ndarray, score: float = EVAL_SCORE, max_det: int = 100
) -> ImageBoxes:
    """One image's exported-head output (A, 5 + C), sigmoids applied -> detections in input pixels."""
    obj = output[:, 4]
    rows = np.flatnonzero(obj >= score)
    cls = output[rows, 5:]
    ids = cls.argmax(1)
    scores = obj[rows] * cls[np.arange(len(rows)), ids]
    keep = scores >= score
    rows, ids, scores = rows[keep], ids[keep], scores[keep]
    cxcy = (output[rows, :2] + cells[rows]) * strides[rows, None]
    wh = np.exp(np.minimum(output[rows, 2:4], 8.0)) * strides[rows, None]
    xyxy = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1)
    kept = batched_nms(xyxy, scores, ids, EVAL_NMS_IOU, False, max_det)
    return ImageBoxes(xyxy[kept].astype(np.float64), ids[kept].astype(np.int64), scores[kept].astype(np.float64))


class Evaluator:
    """Validation frames letterboxed once; ``__call__(model)`` -> (mAP50, mAP50-95)."""

    def __init__(self, items: Sequence[Item], model: Trainable, batch: int = 8) -> None:
        box = Letterboxer(model.input_hw)
        prepared = [box(i.image, i.boxes) for i in items]
        self.images = torch.from_numpy(np.stack([p[0] for p in prepared]))
        self.truth = [ImageBoxes(p[1].astype(np.float64), i.class_ids) for p, i in zip(prepared, items)]
        cells, strides = anchor_grid(model.input_hw, model.strides)
        self.cells, self.strides = cells.numpy(), strides.numpy()
        self.batch = batch

    @torch.no_grad()
    def __call__(self, model: Trainable) -> tuple[float, float]:
        was_training = model.training
        model.eval()
        dets = []
        for start in range(0, len(self.images), self.batch):
            out = model(self.images[start : start + self.batch]).numpy()
            dets += [decode(o, self.cells, self.strides) for o in out]
        model.train(was_training)
        result = mean_average_precision(self.truth, dets)
        return result.map50, result.map50_95


def _freeze_batchnorm(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


class _Batches:
    """Random augmented batches from the training items."""

    def __init__(self, items: Sequence[Item], model: Trainable, cfg: TrainConfig) -> None:
        self.items, self.cfg = list(items), cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.box = Letterboxer(model.input_hw)

    def __call__(self) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        images, targets = [], []
        for k in self.rng.integers(len(self.items), size=self.cfg.batch):
            item = self.items[int(k)]
            image, boxes, ids = augment(item.image, item.boxes, item.class_ids, self.cfg.augment, self.rng)
            tensor, mapped = self.box(image, boxes)
            images.append(tensor)
            targets.append((torch.from_numpy(mapped), torch.from_numpy(ids)))
        return torch.from_numpy(np.stack(images)), targets


def _step(model: Trainable, opt: torch.optim.Optimizer, batch: tuple, grid: tuple[torch.Tensor, torch.Tensor]) -> dict:
    images, targets = batch
    loss, parts = detection_loss(model.raw(images.contiguous(memory_format=torch.channels_last)), targets, *grid)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    opt.step()
    return {"loss": loss.item(), **parts}


def check_budget(model: Trainable, train: Sequence[Item], evaluator: Evaluator, cfg: TrainConfig) -> float:
    """Time one step and one evaluation; refuse (exit 2) a budget that cannot train at all. -> step seconds."""
    probe = copy.deepcopy(model)
    probe.freeze(cfg.freeze)
    probe.train()
    _freeze_batchnorm(probe)
    opt = torch.optim.SGD(probe.parameters(), lr=0.0)
    batches, grid = _Batches(train, probe, cfg), anchor_grid(model.input_hw, model.strides)
    for _ in range(2):  # the first step also builds oneDNN's kernels: time the second
        t0 = time.perf_counter()
        _step(probe, opt, batches(), grid)
        step_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluator(probe)
    eval_s = time.perf_counter() - t0
    need = MIN_STEPS * step_s + 2 * eval_s
    if cfg.budget_s < need:
        raise UsageError(
            f"--time-budget {cfg.budget_s:g}s is too short to train at all: one step of {cfg.batch} images "
            f"takes {step_s:.1f} s and one validation pass {eval_s:.1f} s here, so at least {math.ceil(need)} s "
            f"are needed for {MIN_STEPS} steps and two evaluations"
        )
    return step_s


def fit(
    model: Trainable,
    train: Sequence[Item],
    evaluator: Evaluator,
    cfg: TrainConfig,
    log: Callable[[str], None],
    progress: Callable[[float, str], None] | None = None,
) -> FitResult:
    """Train ``model`` in place; at the end it holds the best weights seen on validation."""
    torch.manual_seed(cfg.seed)
    model.train()
    _freeze_batchnorm(model)
    model.freeze(cfg.freeze)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=5e-4)
    batches, grid = _Batches(train, model, cfg), anchor_grid(model.input_hw, model.strides)
    result, start = FitResult(), time.monotonic()
    m50, m5095 = evaluator(model)
    result.best = {"iteration": 0, "map50": m50, "map50_95": m5095}
    result.history.append({"iteration": 0, "seconds": 0.0, "map50": m50, "map50_95": m5095})
    best_state, stale, next_eval = copy.deepcopy(model.state_dict()), 0, cfg.eval_interval()
    it = 0
    while True:
        elapsed = time.monotonic() - start
        prog = max(it / cfg.max_iters, elapsed / cfg.budget_s)
        if prog >= 1.0:
            result.stopped = "time budget" if elapsed >= cfg.budget_s else "iteration limit"
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(prog, cfg.lr)
        parts = _step(model, opt, batches(), grid)
        it += 1
        if progress is not None:
            progress(prog, f"loss {parts['loss']:.2f} best mAP50 {result.best['map50']:.3f}")
        if time.monotonic() - start >= next_eval:
            next_eval = time.monotonic() - start + cfg.eval_interval()
            m50, m5095 = evaluator(model)
            _freeze_batchnorm(model)
            secs = round(time.monotonic() - start, 1)
            result.history.append({"iteration": it, "seconds": secs, "map50": m50, "map50_95": m5095})
            log(
                f"iter {it} ({secs} s): loss {parts['loss']:.3f} (box {parts['box']:.3f} obj {parts['obj']:.3f} "
                f"cls {parts['cls']:.3f}); val mAP50 {m50:.3f} mAP50-95 {m5095:.3f}"
            )
            if m5095 > result.best["map50_95"]:
                result.best, stale = {"iteration": it, "map50": m50, "map50_95": m5095}, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if stale >= cfg.patience:
                    result.stopped = f"early stopping ({cfg.patience} evaluations without a better val mAP50-95)"
                    break
    result.iterations, result.seconds = it, round(time.monotonic() - start, 1)
    model.load_state_dict(best_state)
    model.eval()
    return result

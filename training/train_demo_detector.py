"""Train the demo's tiny traffic detector on generated scenes (PyTorch, CPU, a few minutes).

    .venv/bin/python -m training.train_demo_detector --out models/demo        # one stage, ~10 min

The committed models/demo weights came from three stages (models/demo/train_log.txt has every line):

    python -m training.train_demo_detector --out /tmp/s1 --max-minutes 10
    python -m training.train_demo_detector --out /tmp/s2 --init /tmp/s1/detector.pt --first-seed 200 \
        --lr 0.0015 --iters 1200 --max-minutes 9
    python -m training.train_demo_detector --out models/demo --init /tmp/s2/detector.pt --first-seed 300 \
        --lr 0.001 --iters 1200 --max-minutes 9 --size-limits 40,110

Writes detector.pt (state_dict, loads with weights_only=True), detector.onnx (opset 13, static
[1, 3, 192, 320], YOLOX raw-head output [1, 1260, 9]), labels.txt and train_log.txt.
Training scenes use seeds 100+ ; evaluation scenes (training/eval_demo_detector.py) use 9000+.

Loss (YOLOX-like, simpler assignment): each ground-truth box is assigned to one stride by its
size; anchors of that stride whose cell centre is inside the box and within 1.5 strides of its
centre (plus the centre cell) are positives, the smallest box winning conflicts. GIoU loss on the
decoded boxes, BCE on objectness over all anchors (normalised by the number of positives) and on
classes over positives. Boxes that are too occluded or small are "ignore": no objectness loss there.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.demo_data import Sample, scene_samples, training_configs
from training.demo_model import INPUT_HW, LABELS, STRIDES, build_model

# Max side (input px) up to which a box goes to stride 8, then 16; larger ones to 32 (--size-limits).
SIZE_LIMITS = (32.0, 72.0)
CENTER_RADIUS = 1.5


def anchor_grid(input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (gx, gy, stride), each (A,), in the head's order (stride by stride, row by row)."""
    gx, gy, st = [], [], []
    for s in STRIDES:
        rows, cols = -(-input_hw[0] // s), -(-input_hw[1] // s)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        gx.append(xs.ravel()), gy.append(ys.ravel()), st.append(np.full(rows * cols, s))
    return (
        np.concatenate(gx).astype(np.float32),
        np.concatenate(gy).astype(np.float32),
        np.concatenate(st).astype(np.float32),
    )


def assign(
    sample_boxes: np.ndarray,
    ignore: np.ndarray,
    grid: tuple[np.ndarray, ...],
    limits: tuple[float, float] = SIZE_LIMITS,
) -> tuple[np.ndarray, np.ndarray]:
    """-> (gt index per anchor (A,), -1 = background; ignored anchor mask (A,))."""
    gx, gy, st = grid
    a = gx.shape[0]
    owner = np.full(a, -1, np.int64)
    if len(sample_boxes) == 0:
        return owner, np.zeros(a, bool)
    b = sample_boxes
    cx_a, cy_a = (gx + 0.5) * st, (gy + 0.5) * st
    inside = (
        (cx_a[None] >= b[:, 0:1]) & (cx_a[None] <= b[:, 2:3]) & (cy_a[None] >= b[:, 1:2]) & (cy_a[None] <= b[:, 3:4])
    )
    gcx, gcy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    level = np.select([side <= limits[0], side <= limits[1]], [STRIDES[0], STRIDES[1]], STRIDES[2])
    on_level = st[None] == level[:, None]
    near = (np.abs(cx_a[None] - gcx[:, None]) < CENTER_RADIUS * st[None]) & (
        np.abs(cy_a[None] - gcy[:, None]) < CENTER_RADIUS * st[None]
    )
    centre_cell = (np.floor(gcx[:, None] / st[None]) == gx[None]) & (np.floor(gcy[:, None] / st[None]) == gy[None])
    pos = on_level & ((inside & near) | centre_cell) & ~ignore[:, None]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cost = np.where(pos, area[:, None], np.inf)
    best = cost.argmin(axis=0)
    has = np.isfinite(cost.min(axis=0))
    owner[has] = best[has]
    ignored = (inside & ignore[:, None]).any(axis=0) & ~has
    return owner, ignored


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of matching rows of (N, 4) xyxy boxes."""
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).prod(1), (b[:, 2:] - b[:, :2]).prod(1)
    union = area_a + area_b - inter
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).prod(1)
    iou = inter / union.clamp(min=1e-6)
    return iou - (hull - union) / hull.clamp(min=1e-6)


def batch_loss(
    pred: torch.Tensor,
    batch: list[Sample],
    flips: list[bool],
    grid_t: tuple[torch.Tensor, ...],
    grid: tuple[np.ndarray, ...],
    width: int,
    limits: tuple[float, float],
) -> tuple[torch.Tensor, dict[str, float]]:
    gx, gy, st = grid_t
    obj_t = torch.zeros(pred.shape[:2])
    weight = torch.ones(pred.shape[:2])
    pos_pred, pos_box, pos_cls, pos_anchor = [], [], [], []
    for i, (s, flip) in enumerate(zip(batch, flips)):
        boxes = s.boxes.copy()
        if flip:
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        owner, ignored = assign(boxes, s.ignore, grid, limits)
        weight[i, torch.from_numpy(ignored)] = 0.0
        idx = np.flatnonzero(owner >= 0)
        obj_t[i, idx] = 1.0
        pos_pred.append(pred[i, idx])
        pos_box.append(torch.from_numpy(boxes[owner[idx]]))
        pos_cls.append(torch.from_numpy(s.class_ids[owner[idx]]))
        pos_anchor.append(torch.from_numpy(idx))
    p, tb = torch.cat(pos_pred), torch.cat(pos_box)
    cls, anc = torch.cat(pos_cls), torch.cat(pos_anchor)
    n = max(p.shape[0], 1)
    s = st[anc]
    cxcy = (p[:, :2] + torch.stack([gx[anc], gy[anc]], 1)) * s[:, None]
    wh = torch.exp(p[:, 2:4].clamp(max=6.0)) * s[:, None]
    box = torch.cat([cxcy - wh / 2, cxcy + wh / 2], 1)
    l_box = (1.0 - giou(box, tb)).sum() / n
    l_obj = (F.binary_cross_entropy_with_logits(pred[..., 4], obj_t, reduction="none") * weight).sum() / n
    l_cls = F.binary_cross_entropy_with_logits(p[:, 5:], F.one_hot(cls, p.shape[1] - 5).float(), reduction="sum") / n
    total = 5.0 * l_box + l_obj + l_cls
    parts = {"box": l_box.item(), "obj": l_obj.item(), "cls": l_cls.item(), "pos": float(n) / len(batch)}
    return total, parts


def augment(images: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, list[bool]]:
    """Horizontal flips (the other direction of travel) and per-image gain / colour cast."""
    b = images.shape[0]
    flips = (torch.rand(b, generator=gen) < 0.5).tolist()
    x = images.float()
    for i, f in enumerate(flips):
        if f:
            x[i] = x[i].flip(-1)
    gain = 0.65 + 0.7 * torch.rand(b, 1, 1, 1, generator=gen)
    cast = 1.0 + 0.16 * (torch.rand(b, 3, 1, 1, generator=gen) - 0.5)
    return (x * gain * cast).clamp(0, 255), flips


class Log:
    """Prints and keeps every line for train_log.txt."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.t0 = time.time()

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self.lines.append(line)


def lr_at(progress: float, base: float, warmup: float = 0.04) -> float:
    """Warm-up then cosine to 2% of ``base``; progress in [0, 1]."""
    if progress < warmup:
        return base * (0.05 + 0.95 * progress / warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup))))


def train(samples: list[Sample], args: argparse.Namespace, log: Log) -> torch.nn.Module:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = build_model(export=False).train()
    if args.init is not None:  # fine-tune: a second stage starting from earlier weights
        model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True))
        log(f"initialised from {args.init}")
    log(f"model: {sum(p.numel() for p in model.parameters())} parameters, strides {STRIDES}, input {INPUT_HW}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    images = torch.from_numpy(np.stack([s.image for s in samples]))
    grid = anchor_grid(INPUT_HW)
    grid_t = tuple(torch.from_numpy(g) for g in grid)
    # channels_last: oneDNN's convolutions (and their backward) run ~2.5x faster on CPU this way.
    model = model.to(memory_format=torch.channels_last)
    start, budget = time.time(), args.max_minutes * 60
    for it in range(args.iters):
        # The schedule follows whichever runs out first, iterations or wall time, so a slow shared
        # machine still gets a full warm-up -> cosine decay instead of stopping at a high rate.
        progress = max(it / args.iters, (time.time() - start) / budget)
        if progress >= 1.0:
            log(f"time budget of {args.max_minutes} min reached after {it} iterations")
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(progress, args.lr)
        idx = torch.randint(len(samples), (args.batch,), generator=gen)
        x, flips = augment(images[idx], gen)
        x = x.contiguous(memory_format=torch.channels_last)
        loss, parts = batch_loss(
            model(x), [samples[i] for i in idx.tolist()], flips, grid_t, grid, INPUT_HW[1], args.size_limits
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        if it % 20 == 0 or it == args.iters - 1:
            log(
                f"iter {it:4d} progress {progress:.2f} lr {opt.param_groups[0]['lr']:.5f} loss {loss.item():.3f} "
                + " ".join(f"{k} {v:.3f}" for k, v in parts.items())
            )
    return model.eval()


def export(model: torch.nn.Module, out: Path, log: Log) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = model.to(memory_format=torch.contiguous_format)
    torch.save(model.state_dict(), out / "detector.pt")
    model.export_mode = True
    dummy = torch.full((1, 3, *INPUT_HW), 114.0)
    with warnings.catch_warnings():  # the TorchScript exporter is chosen on purpose: no onnxscript needed
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(out / "detector.onnx"),
            opset_version=13,
            input_names=["images"],
            output_names=["output"],
            dynamo=False,
        )
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n")
    log(
        f"wrote {out}/detector.pt ({(out / 'detector.pt').stat().st_size} B), detector.onnx "
        f"({(out / 'detector.onnx').stat().st_size} B), labels.txt"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("models/demo"))
    ap.add_argument("--scenes", type=int, default=12, help="training scenes (seeds first-seed, first-seed + 1, ...)")
    ap.add_argument("--first-seed", type=int, default=100, help="first training scene seed (eval scenes use 9000+)")
    ap.add_argument("--init", type=Path, help="start from this state_dict (fine-tuning stage)")
    ap.add_argument(
        "--size-limits",
        type=lambda v: tuple(float(x) for x in v.split(",")),
        default=SIZE_LIMITS,
        help="S8,S16: a box whose longer side (input px) is <= S8 goes to stride 8, <= S16 to 16, else 32",
    )
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each training scene")
    ap.add_argument("--every", type=int, default=2, help="keep every N-th frame")
    ap.add_argument("--iters", type=int, default=800, help="at most this many iterations")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--max-minutes", type=float, default=10.0, help="training wall-time budget (the schedule fits in it)"
    )
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    log = Log()
    log("command: python -m training.train_demo_detector " + " ".join(sys.argv[1:] if argv is None else argv))
    log(f"torch {torch.__version__}, threads {args.threads}")
    samples: list[Sample] = []
    if args.first_seed + args.scenes > 9000:
        raise SystemExit("training seeds must stay below 9000 (held-out evaluation scenes)")
    for cfg in training_configs(range(args.first_seed, args.first_seed + args.scenes), args.seconds):
        samples += scene_samples(cfg, INPUT_HW, every=args.every)
    n_boxes = sum(int((~s.ignore).sum()) for s in samples)
    per_class = np.bincount(np.concatenate([s.class_ids[~s.ignore] for s in samples]), minlength=len(LABELS))
    log(
        f"data: {args.scenes} scenes (seeds {args.first_seed}+), {len(samples)} frames, {n_boxes} boxes "
        + ", ".join(f"{n} {c}" for n, c in zip(LABELS, per_class.tolist()))
    )
    model = train(samples, args, log)
    export(model, args.out, log)
    (args.out / "train_log.txt").write_text("\n".join(log.lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

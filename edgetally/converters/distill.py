"""``edge convert --activation``: replace SiLU, then recover the FP32 model's accuracy, on the CPU
(``--distill-device cuda``: the gradient steps on a workstation's GPU; everything else stays on the CPU).

1. The SiLUs on the largest feature maps, holding ``--activation-share`` of all SiLU output elements
   (default DEFAULT_SHARE; 1: every SiLU), become the activation the target's INT8 kernels fuse
   (edgetally.converters.graph.activations). What an activation costs grows with its elements, so the
   big early maps hold most of the speed-up; the small deep maps are cheap and most of the accuracy.
2. Teacher (the FP32 model) and student (the rewritten one) become torch modules (onnx2torch, the
   TFLite path's loader). Images: UNLABELLED -- the calibration source minus every image any gate fold
   evaluates on (by content hash: the gate stays honest), plus ``--distill-images`` (frames of the
   user's videos), as random 320-pixel crops (and flips) of the letterboxed tensors: the network is
   fully convolutional, so each image gives many cheap samples. Every SOURCE weighs the same in the
   refit and in the batches, however many images it has: 256 near-identical frames of one video must
   not outvote 64 varied calibration images.
3. Layer-wise least-squares refit (edgetally.converters.refit): every convolution re-solved in closed
   form against the teacher, in graph order, in about a minute.
4. Gradient distillation for the rest of the time budget: the output of every replaced activation
   (each normalised by the teacher's energy there, so deep and shallow layers count alike) plus the
   raw head output; Adam with a cosine learning rate over the remaining time (the budget is what the
   user gave), one progress bar in seconds; or over exactly ``--distill-steps`` steps, whatever they
   take: a time budget runs a different number of steps on every run, and the quantised model's folds
   move with them, so report.json's step count repeats a run exactly (same machine, same threads).
   Every VALIDATION_EVERY-th image of each source is held out of both the refit and the steps; the
   head's loss on them picks the weights that ship (the refit's, or those after some steps): after a
   close refit, steps that fit the training images better lost accuracy on unseen ones (docs/int8.md).
5. The trained Conv weights are written back into the rewritten ONNX by initializer name: graph and
   names unchanged, so the usual quantisation and gate run on it. The gate compares with the ORIGINAL
   FP32 model; report.json's ``distillation`` has the accuracy before, after the refit, after
   distillation, and the time. When gradient steps were kept and no rung passes with that student,
   the refit's weights are quantised and gated as well (report.json's ``quantised_model`` says which
   shipped): the held-out loss is measured in float and cannot tell which student quantises better.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.artifact import Artifact
from edgetally.converters.accuracy.folds import Fold
from edgetally.converters.graph.activations import DEFAULT_SHARE
from edgetally.errors import ConversionError, UsageError

CROP = 320
LEARNING_RATE = 1e-4  # relative to each tensor RMS (YOLOX-nano hardswish after the refit: 1e-3 lost 4 mAP points in 150 s, 3e-4 lost 0.6 in 300 s, 1e-4 gained 0.6 in 150 s)
WARMUP = 0.05
# YOLOX-nano SiLU -> HardSwish, refit alone: 16 crops of 320 px 28.1 mAP50-95, 48 whole images 30.1 (FP32 33.7)
REFIT_IMAGES = 48
VALIDATION_EVERY = 8  # of each source's unlabelled images, held out to pick the student that ships
VALIDATION_CHECKS = 10  # times the held-out loss is measured during the gradient steps (and once before)
MAX_IMAGES = 512  # tensors held in memory (2 MB each at 416 px)


@dataclass(frozen=True)
class TrainingImages:
    """Unlabelled letterboxed tensors (N, C, H, W) and which source each came from (0: calibration)."""

    tensors: np.ndarray
    source: np.ndarray

    def balanced(self, count: int) -> list[int]:
        """``count`` indices, the same number from every source (spread evenly within it), fewer where a
        source runs out."""
        from edgetally.converters.accuracy.calibration import evenly_spaced

        groups = [np.flatnonzero(self.source == s) for s in np.unique(self.source)]
        chosen: list[int] = []
        for rank, group in enumerate(sorted(groups, key=len)):
            quota = (count - len(chosen)) // (len(groups) - rank)
            chosen += [int(group[i]) for i in evenly_spaced(len(group), quota)]
        return sorted(chosen)

    def held_out(self, every: int) -> tuple[TrainingImages, TrainingImages]:
        """(training, validation): every ``every``-th image of each source (from its middle) is held out,
        so the refit and the gradient steps never see what picks between them."""
        keep = np.ones(len(self.source), bool)
        for value in np.unique(self.source):
            group = np.flatnonzero(self.source == value)
            keep[group[every // 2 :: every]] = False
        return (
            TrainingImages(self.tensors[keep], self.source[keep]),
            TrainingImages(self.tensors[~keep], self.source[~keep]),
        )

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One tensor: a source picked uniformly, then one of its images."""
        sources = np.unique(self.source)
        group = np.flatnonzero(self.source == sources[rng.integers(len(sources))])
        return self.tensors[group[rng.integers(len(group))]]


@dataclass(frozen=True)
class DistillConfig:
    activation: str  # relu | hardswish
    share: float = DEFAULT_SHARE  # of the SiLU output elements, largest maps first
    budget_s: float = 900.0  # the whole recovery: refit plus gradient steps
    threads: int = 1
    crop: int = CROP
    learning_rate: float = LEARNING_RATE
    seed: int = 0
    steps: int | None = None  # gradient steps, whatever they take (None: as many as the budget's time allows)
    device: str = "cpu"  # where the gradient steps run (torch device: "cuda" on a workstation with a GPU)


def check_device(device: str) -> None:
    """``--distill-device``: cpu always works; cuda needs a CUDA build of torch that sees a GPU."""
    import torch

    if device == "cpu":
        return
    if device != "cuda":
        raise UsageError(f"--distill-device {device}: choose cpu or cuda")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise UsageError(
            f"--distill-device cuda: torch {torch.__version__} ({build}) sees no CUDA GPU here; "
            "drop the option to distil on the CPU"
        )


def rewrite(reference: Artifact, directory: Path, activation: str, share: float = 1.0) -> tuple[Path, list[str], dict]:
    """The reference ONNX with SiLU replaced on the largest maps holding ``share`` of the SiLU elements:
    (path, names of the replaced nodes, what was replaced). Nothing to replace: error."""
    import onnx

    from edgetally.converters.graph.activations import ONNX_OPS, largest_maps, replace_silu, silu_sizes
    from edgetally.converters.graph.nodes import name_nodes

    model = onnx.load(str(reference.model_path))
    name_nodes(model)
    sizes = silu_sizes(model) if share < 1.0 else {}
    only = largest_maps(sizes, share) if sizes else None
    model, replaced = replace_silu(model, ONNX_OPS[activation], only=only)
    if not replaced:
        raise UsageError(f"{reference.model_path.name}: no SiLU (x * Sigmoid(x)) to replace: drop --activation")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.student.onnx"
    onnx.save(model, str(path))
    total = sum(e for _h, _w, e in sizes.values())
    scope = {
        "share_asked": share,
        "silu_total": len(sizes) if sizes else len(replaced),
        "elements_share": round(sum(sizes[n][2] for n in replaced) / total, 3) if total else 1.0,
        "kept_silu_maps": sorted({f"{h}x{w}" for n, (h, w, _e) in sizes.items() if n not in replaced}),
    }
    return path, replaced, scope


def _module(path: Path) -> Any:
    from edgetally.converters.targets.tflite import load_onnx_as_torch

    module, _names, _proto = load_onnx_as_torch(path)
    return module


def _taps(module: Any, names: Sequence[str], store: list) -> list:
    """Forward hooks appending each named submodule's output to ``store`` (in graph order)."""
    from edgetally.converters.targets.tflite import _sanitize

    hooks = []
    for name in names:
        try:
            sub = module.get_submodule(_sanitize(name))
        except AttributeError as exc:
            raise ConversionError(f"distillation: node {name} has no torch module after onnx2torch") from exc
        hooks.append(sub.register_forward_hook(lambda _m, _i, out: store.append(out)))
    return hooks


def _relative_mse(student: Any, teacher: Any) -> Any:
    return ((student - teacher) ** 2).mean() / ((teacher**2).mean() + 1e-6)


def _head_loss(s_out: Any, t_out: Any) -> Any:
    """A packed YOLO head [1, N, 4 + 1 + classes]: box regressions weighted by the teacher's objectness
    (background anchors' boxes are never used), probabilities by binary cross-entropy against the
    teacher's (minus its own entropy: zero when they agree). Any other output: relative MSE."""
    import torch

    if s_out.dim() != 3 or s_out.shape[-1] <= 5:
        return _relative_mse(s_out, t_out)
    weight = t_out[..., 4:5].clamp(min=0)
    boxes = (weight * (s_out[..., :4] - t_out[..., :4]) ** 2).sum() / ((weight * t_out[..., :4] ** 2).sum() + 1e-6)
    p, q = t_out[..., 4:].clamp(1e-6, 1 - 1e-6), s_out[..., 4:].clamp(1e-6, 1 - 1e-6)
    cross = -(p * torch.log(q) + (1 - p) * torch.log(1 - q))
    entropy = -(p * torch.log(p) + (1 - p) * torch.log(1 - p))
    return boxes + (cross - entropy).sum(dim=-1).mean()


def _loss(s_out: Any, t_out: Any, s_feats: list, t_feats: list) -> Any:
    """Mean relative error over the replaced activations, plus the head's output."""
    features = sum(_relative_mse(s, t) for s, t in zip(s_feats, t_feats, strict=True)) / max(len(t_feats), 1)
    return features + _head_loss(s_out, t_out)


def _batch(images: TrainingImages, rng: np.random.Generator, crop: int) -> np.ndarray:
    """One random crop (and maybe a horizontal flip) of one random letterboxed tensor, (1, C, crop, crop)."""
    x = images.sample(rng)
    height, width = x.shape[1:]
    size = min(crop, height, width)
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    x = x[:, top : top + size, left : left + size]
    if rng.random() < 0.5:
        x = x[:, :, ::-1]
    return np.ascontiguousarray(x[None])


def refit_student(teacher: Any, student: Any, training: TrainingImages, config: DistillConfig) -> dict:
    """Closed-form layer-wise refit (edgetally.converters.refit) on REFIT_IMAGES whole images, as many
    from each source, spread evenly within it."""
    import torch

    from edgetally.converters.refit import conv_outputs, refit

    started = time.perf_counter()
    images = [torch.from_numpy(training.tensors[i][None]) for i in training.balanced(REFIT_IMAGES)]
    residuals = refit(student, conv_outputs(teacher, images), images, config.seed)
    values = list(residuals.values())
    return {
        "refit_seconds": round(time.perf_counter() - started, 1),
        "refit_convs": len(values),
        "refit_residual_median": round(float(np.median(values)), 5) if values else None,
    }


def _schedule(progress: float) -> float:
    """Linear warm-up over the first WARMUP of the time, then cosine to zero: Adam's first steps are
    full-size sign steps, which knock a refitted student off before its moments settle."""
    if progress < WARMUP:
        return progress / WARMUP
    return 0.5 * (1 + np.cos(np.pi * (progress - WARMUP) / (1 - WARMUP)))


def distil(
    teacher: Any,
    student: Any,
    taps: Sequence[str],
    training: TrainingImages,
    config: DistillConfig,
    seconds: float,
    progress: Callable[[float, float], None] | None = None,
    validation: TrainingImages | None = None,
) -> dict:
    """Gradient distillation for ``seconds`` (or exactly ``config.steps`` steps, ignoring the time): Adam,
    cosine learning rate over that time (those steps); -> stats.

    With ``validation`` images, the head's distillation loss on them is measured before the first step
    and VALIDATION_CHECKS times during the budget, and the student ends with the weights that scored best:
    gradient steps that fit the training images at the cost of unseen ones are undone (after a close
    refit they can only lose)."""
    import torch

    torch.set_num_threads(config.threads)  # more threads than free cores makes torch's OpenMP spin, not run
    device = torch.device(config.device)
    teacher.to(device)
    student.to(device)
    student.train()
    t_feats: list = []
    s_feats: list = []
    hooks = _taps(teacher, taps, t_feats) + _taps(student, taps, s_feats)
    # One group per tensor, its learning rate relative to the tensor's own scale: batch-norm-folded convolutions
    # differ by orders of magnitude, and Adam moves every weight by ~lr a step whatever its size.
    groups = [{"params": [p], "scale": float(p.detach().pow(2).mean().sqrt()) + 1e-8} for p in student.parameters()]
    optimizer = torch.optim.Adam(groups, lr=config.learning_rate)
    rng = np.random.default_rng(config.seed + 1)
    keeper = _BestWeights(teacher, validation, device) if validation is not None and len(validation.tensors) else None
    if keeper is not None:
        keeper.check(student, 0)
    losses: list[float] = []
    started = time.perf_counter()
    try:
        while (done := _done(time.perf_counter() - started, seconds, len(losses), config.steps)) < 1.0:
            if keeper is not None and done >= len(keeper.history) / (VALIDATION_CHECKS + 1):
                keeper.check(student, len(losses))
            rate = _schedule(done) * config.learning_rate
            for group in optimizer.param_groups:
                group["lr"] = group["scale"] * rate
            x = torch.from_numpy(_batch(training, rng, config.crop)).to(device)
            t_feats.clear()
            s_feats.clear()
            with torch.no_grad():
                t_out = teacher(x)
            loss = _loss(student(x), t_out, s_feats, t_feats)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(len(losses) if config.steps is not None else time.perf_counter() - started, losses[-1])
    finally:
        for hook in hooks:
            hook.remove()
        student.eval()
    window = max(1, min(50, len(losses) // 4))
    stats = {
        "steps": len(losses),
        "distill_seconds": round(time.perf_counter() - started, 1),
        "loss_first": round(float(np.mean(losses[:window])), 5) if losses else None,
        "loss_last": round(float(np.mean(losses[-window:])), 5) if losses else None,
    }
    if keeper is not None:
        if losses:
            keeper.check(student, len(losses))
        stats.update(keeper.restore(student))
    teacher.to("cpu")  # the refit alternative, write-back and the gate run on the CPU
    student.to("cpu")
    return stats


def _done(elapsed: float, seconds: float, steps_done: int, steps: int | None) -> float:
    """How far the gradient phase is, 0..1: by steps when a step count is given, else by time."""
    if steps is not None:
        return steps_done / steps if steps > 0 else 1.0
    return elapsed / seconds if seconds > 0 else 1.0


class _BestWeights:
    """The student's weights at its lowest head loss on held-out images (each source weighing the same)."""

    def __init__(self, teacher: Any, validation: TrainingImages, device: Any = "cpu") -> None:
        import torch

        self.validation, self.device = validation, device
        with torch.no_grad():
            self.targets = [teacher(torch.from_numpy(x[None]).to(device)) for x in validation.tensors]
        self.history: list[tuple[int, float]] = []  # (gradient steps so far, held-out loss)
        self.best: dict | None = None

    def loss(self, student: Any) -> float:
        import torch

        with torch.no_grad():
            per_image = np.array(
                [
                    float(_head_loss(student(torch.from_numpy(x[None]).to(self.device)), target))
                    for x, target in zip(self.validation.tensors, self.targets, strict=True)
                ]
            )
        return float(
            np.mean([per_image[self.validation.source == s].mean() for s in np.unique(self.validation.source)])
        )

    def check(self, student: Any, steps: int) -> None:
        loss = self.loss(student)
        if not self.history or loss < min(value for _step, value in self.history):
            self.best = {k: v.detach().to("cpu", copy=True) for k, v in student.state_dict().items()}
        self.history.append((steps, round(loss, 6)))

    def restore(self, student: Any) -> dict:
        best_steps, best_loss = min(self.history, key=lambda item: item[1])
        if self.best is not None:
            student.load_state_dict(self.best)
        return {
            "validation_images": len(self.validation.tensors),
            "validation_loss": [value for _step, value in self.history],
            "validation_steps": [step for step, _value in self.history],
            "kept_steps": best_steps,
            "kept_validation_loss": best_loss,
        }


def write_back(student: Any, source: Path, out: Path) -> int:
    """Copy the trained Conv weights/biases into ``source``'s initializers (by node name); -> convs updated."""
    import onnx
    from onnx import numpy_helper

    from edgetally.converters.targets.tflite import _sanitize

    model = onnx.load(str(source))
    inits = {i.name: i for i in model.graph.initializer}
    updated = 0
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        conv = student.get_submodule(_sanitize(node.name))
        for index, param in ((1, conv.weight), (2, conv.bias)):
            if index < len(node.input) and node.input[index] in inits and param is not None:
                array = param.detach().cpu().numpy().astype(np.float32)
                inits[node.input[index]].CopyFrom(numpy_helper.from_array(array, node.input[index]))
        updated += 1
    onnx.save(model, str(out))
    return updated


def training_tensors(
    folds: Sequence[Fold], extra: Sequence[Path], spec: Any, limit: int = MAX_IMAGES
) -> tuple[TrainingImages, dict]:
    """Calibration tensors no fold evaluates on (source 0), plus each of ``extra``'s images/videos
    (sources 1, 2, ...; minus evaluated ones too)."""
    from edgetally.converters.accuracy.folds import calibration_from, open_source

    evaluated = {item.sha256 for fold in folds for item in (*fold.images, *fold.holdout)}
    chosen: dict[str, tuple[np.ndarray, int]] = {}
    for fold in folds:
        calibration = fold.calibration
        for tensor, digest in (
            zip(calibration.tensors, calibration.sha256, strict=True) if calibration is not None else ()
        ):
            if digest not in evaluated:
                chosen.setdefault(digest, (tensor, 0))
    from_calibration = len(chosen)
    for number, path in enumerate(extra, start=1):
        source = open_source(path, 256, max_side=2 * max(spec.height, spec.width))
        extra_set = calibration_from(source, range(len(source.names)), spec)
        for tensor, digest in zip(extra_set.tensors, extra_set.sha256, strict=True):
            if digest not in evaluated:
                chosen.setdefault(digest, (tensor, number))
    if len(chosen) < 8:
        raise UsageError(
            f"distillation needs unlabelled images that no gate fold evaluates on; found {len(chosen)}: "
            "give --distill-images (frames of your camera, another image folder), or --eval-images "
            "separate from --calib"
        )
    kept = list(chosen.values())[:limit]
    training = TrainingImages(np.stack([t for t, _s in kept]), np.array([s for _t, s in kept]))
    return training, {
        "images": len(kept),
        "from_calibration": from_calibration,
        "from_distill_images": len(chosen) - from_calibration,
        "sources": [str(p) for p in extra],
        "excluded_evaluated": True,
    }


def _judge(reference: Artifact, candidate: Artifact, fold: Fold, config: Any) -> dict:
    from edgetally.converters.accuracy.gate import References, judge_fold

    result = judge_fold(References(reference, [fold], config)(0), candidate, fold, config)
    metrics = {k: v for k, v in result.verdict.metrics.items() if k in ("map50_95_drop_points", "agreement_f1_iou50")}
    if "map50_95_drop_points" in result.verdict.metrics:
        metrics["map50_95"] = result.verdict.metrics["candidate"]["map50_95"]
    if result.holdout is not None:
        metrics["holdout_agreement_f1"] = result.holdout.metrics["agreement_f1_iou50"]
    return metrics


def _progress_bar(total: float, unit: str):
    from tqdm import tqdm

    bar = tqdm(total=int(total), desc="distilling", unit=unit, disable=None, leave=False)

    def update(done: float, loss: float) -> None:
        bar.update(max(0, min(int(done), bar.total) - bar.n))
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    return bar, update


def _student_artifact(reference: Artifact, student: Any, student_path: Path, directory: Path, note: str) -> Artifact:
    from edgetally.converters.derive import derive

    directory.mkdir(parents=True, exist_ok=True)
    write_back(student, student_path, directory / "model.fp32.onnx")
    return derive(
        reference, directory, "model.fp32.onnx", format="onnx", runtime="onnxruntime", precision="fp32", notes=[note]
    )


def replace_activations(
    reference: Artifact,
    work: Path,
    target: Any,
    folds: Sequence[Fold],
    request: Any,
    config: Any,
    log: Callable[[str], None] = print,
) -> dict:
    """SiLU -> the target's fused activation, refitted and distilled within the budget; -> BuildOptions fields
    (source: the FP32 student to quantise, extra_report: report.json's ``distillation``).

    The budget covers the recovery (rewrite, refit, gradient steps); the accuracy measurements before and
    after, which only report, come on top."""
    import torch

    activation = target.fused_activation if request.activation == "auto" else request.activation
    settings = DistillConfig(
        activation,
        request.activation_share,
        request.distill_budget_s,
        threads=request.threads,
        steps=request.distill_steps,
        device=request.distill_device,
    )
    check_device(settings.device)
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    student_path, taps, scope = rewrite(reference, work, activation, settings.share)
    extra = [request.distill_images] if request.distill_images is not None else []
    training, data = training_tensors(folds, extra, reference.manifest.input)
    training, validation = training.held_out(VALIDATION_EVERY)
    teacher, student = _module(reference.model_path).eval(), _module(student_path).eval()
    spent = time.perf_counter() - started
    before = _judge(
        reference, _student_artifact(reference, student, student_path, work / "replaced", "replaced"), folds[0], config
    )
    log(
        f"[distill] SiLU -> {activation} in {len(taps)} of {scope['silu_total']} places "
        f"({scope['elements_share']:.0%} of the SiLU elements); FP32 before: {_short(before)}; "
        f"{data['images']} unlabelled images, "
        + (f"budget {settings.budget_s:.0f} s" if settings.steps is None else f"{settings.steps} gradient steps")
    )
    stats = refit_student(teacher, student, training, settings)
    spent += stats["refit_seconds"]
    refit = _student_artifact(
        reference, student, student_path, work / "refit", f"SiLU replaced by {activation}, refitted to the FP32 model"
    )
    refitted = _judge(reference, refit, folds[0], config)
    log(f"[distill] layer-wise refit in {stats['refit_seconds']} s: FP32 {_short(refitted)}")
    stats.update(
        _gradient_phase(teacher, student, taps, training, settings, max(settings.budget_s - spent, 0.0), validation)
    )
    note = f"SiLU replaced by {activation}, refitted and distilled from the FP32 model"
    trained = _student_artifact(reference, student, student_path, work / "trained", note)
    after = _judge(reference, trained, folds[0], config)
    seconds = round(spent + stats["distill_seconds"], 1)
    kept = (
        ""
        if stats.get("kept_steps") is None
        else f", kept the weights after {stats['kept_steps']} of them (lowest held-out loss)"
    )
    repeat = f"; --distill-steps {stats['steps']} repeats these steps" if stats["steps"] else ""
    log(
        f"[distill] {stats['steps']} gradient steps{kept}; FP32 after: {_short(after)} "
        f"({seconds} s of training{repeat})"
    )
    report = {
        "activation": activation,
        "replaced": len(taps),
        **scope,
        "before": before,
        "after_refit": refitted,
        "after": after,
        "budget_s": settings.budget_s if settings.steps is None else None,
        "steps_given": settings.steps,
        "seconds": seconds,
        "threads": settings.threads,
        "device": settings.device,
        "crop": settings.crop,
        **stats,
        **data,
        "measured_on": folds[0].name,
        "summary": f"FP32 {_short(before)} before, {_short(refitted)} after the refit, "
        f"{_short(after)} after distillation ({seconds} s)",
    }
    # The held-out loss is measured in float; which of two equally good float students quantises better it
    # cannot see. So when gradient steps were kept, the refit's weights remain a second candidate for the gate.
    stepped = stats["steps"] > 0 and stats.get("kept_steps") != 0
    return {
        "source": trained,
        "source_label": "distilled" if stepped else "refit",
        "alternatives": [("refit", refit)] if stepped else [],
        "extra_report": {"distillation": report},
    }


def _gradient_phase(
    teacher: Any,
    student: Any,
    taps: Sequence[str],
    training: TrainingImages,
    settings: DistillConfig,
    seconds: float,
    validation: TrainingImages,
) -> dict:
    bar, progress = _progress_bar(seconds, "s") if settings.steps is None else _progress_bar(settings.steps, "step")
    try:
        return distil(teacher, student, taps, training, settings, seconds, progress, validation)
    finally:
        bar.close()


def _short(metrics: dict) -> str:
    if "map50_95_drop_points" in metrics:
        return f"mAP50-95 drop {metrics['map50_95_drop_points']:.2f} points"
    return f"agreement F1 {metrics.get('agreement_f1_iou50', metrics.get('holdout_agreement_f1'))}"

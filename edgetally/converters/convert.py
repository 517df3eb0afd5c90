"""``edge convert --precision int8|fp16 / --profile``: package FP32, (calibrate, quantise | halve), gate, report."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetally.artifact import Artifact
from edgetally.converters.graph.activations import DEFAULT_SHARE
from edgetally.errors import UsageError
from edgetally.profiles import Profile, get_profile

if TYPE_CHECKING:
    from edgetally.converters.targets import Target


@dataclass(frozen=True)
class Int8Request:
    model: Path
    out: Path
    decoder: str
    input_size: int | tuple[int, int]
    labels: Any
    calib: Path | None
    eval_images: Path | None = None
    eval_labels: Path | None = None
    max_map_drop: float | None = None
    fallback: bool = False
    profile: str | None = None
    calib_count: int = 64
    threads: int = 2
    latency_runs: int = 100
    target: str | None = None  # a name in edgetally.converters.targets (default: the profile's, else onnxruntime)
    folds: int = 1
    holdout: Path | None = None  # label-free frames from the deployment camera
    activation: str | None = None  # replace SiLU before quantising: relu | hardswish | auto (the target's)
    distill_budget_s: float = 900.0
    distill_images: Path | None = None  # extra unlabelled images/video for distillation
    activation_share: float = DEFAULT_SHARE  # replace SiLU on the largest maps holding this share of its elements
    distill_steps: int | None = None  # exactly this many gradient steps instead of the time budget's
    distill_device: str = "cpu"  # where the gradient steps run: cpu, or cuda (a workstation's NVIDIA GPU)


def resolve_target(profile: Profile | None, name: str | None = None) -> Target:
    """The conversion target: ``--target`` if given, else the profile's runtime + io_dtype, else onnxruntime."""
    from edgetally.converters.targets import resolve

    return resolve(profile.runtime if profile else None, profile.io_dtype if profile else "float32", name)


def _folds(request: Int8Request, reference: Artifact, calibrate: bool) -> tuple[list, dict]:
    from edgetally.converters.accuracy.folds import (
        MIN_EVAL_IMAGES,
        MIN_LABELLED_EVAL_IMAGES,
        Fold,
        SplitRequest,
        plan_folds,
    )

    if calibrate:
        return plan_folds(
            SplitRequest(
                request.calib,
                request.calib_count,
                request.folds,
                request.eval_images,
                request.eval_labels,
                request.holdout,
            ),
            reference.manifest.input,
        )
    from edgetally.converters.accuracy.evaluate import load_eval_set

    images = load_eval_set(request.eval_images, request.eval_labels)
    need = MIN_LABELLED_EVAL_IMAGES if request.eval_labels else MIN_EVAL_IMAGES
    if len(images) < need:
        raise UsageError(f"{request.eval_images}: only {len(images)} evaluation images; the gate needs at least {need}")
    return [Fold(None, images)], {
        "images_dir": str(request.eval_images),
        "count": len(images),
        "folds": 1,
        "labels_dir": str(request.eval_labels) if request.eval_labels else None,
    }


def _options(request: Int8Request, profile: Profile | None, precision: str, eval_info: dict, **extra: Any):
    from edgetally.converters.build import BuildOptions

    return BuildOptions(
        fallback=request.fallback,
        profile=profile.name if profile else None,
        eval_info=eval_info,
        latency_runs=request.latency_runs,
        precision=precision,
        io_dtype=profile.io_dtype if profile else "float32",
        speed_fallback=bool(profile and profile.speed_fallback),
        speed_threads=profile.threads if profile else request.threads,
        **extra,
    )


def convert_int8(
    request: Int8Request, package_options: Mapping[str, Any], log: Callable[[str], None] = print
) -> tuple[Artifact, dict]:
    """Run the whole INT8 conversion; raises ConversionError (exit 1) when the gate fails."""
    from edgetally.converters.accuracy.gate import DEFAULT_MAX_MAP_DROP, GateConfig
    from edgetally.converters.build import build_int8
    from edgetally.converters.package import package_fp32

    profile = get_profile(request.profile) if request.profile else None
    target = resolve_target(profile, request.target)
    if request.calib is None:
        raise UsageError("--calib is required for INT8: an image folder or a video from the deployment camera")
    budget = DEFAULT_MAX_MAP_DROP if request.max_map_drop is None else request.max_map_drop
    if profile is not None and profile.int8_pays == "with-activation-replacement" and request.activation is None:
        log(
            f"note: on {profile.board}, INT8 is expected to beat FP32 only once SiLU is replaced by "
            f"{target.fused_activation} (--activation auto); report.json will say how it compares"
        )
    with tempfile.TemporaryDirectory(prefix="edge-convert-") as tmp:
        reference = package_fp32(
            request.model, Path(tmp) / "fp32", request.decoder, request.input_size, request.labels, **package_options
        )
        folds, eval_info = _folds(request, reference, calibrate=True)
        log(
            f"calibration: {len(folds[0].calibration)} images from {request.calib}; evaluation: "
            f"{len(folds[0].images)} images"
            + (f", {len(folds[0].holdout)} holdout frames" if folds[0].holdout else "")
            + (f" (fold 1 of {len(folds)})" if len(folds) > 1 else "")
        )
        config = GateConfig(max_map_drop=budget, threads=request.threads)
        extra: dict[str, Any] = {}
        if request.activation is not None:
            from edgetally.converters.distill import replace_activations

            extra = replace_activations(reference, Path(tmp) / "student", target, folds, request, config, log)
        return build_int8(
            reference,
            request.out,
            target,
            folds,
            config,
            _options(request, profile, "int8", eval_info, **extra),
            log=log,
        )


def convert_fp16(
    request: Int8Request, package_options: Mapping[str, Any], log: Callable[[str], None] = print
) -> tuple[Artifact, dict]:
    """``--precision fp16``: the target's FP16 model, accepted only through the accuracy gate."""
    from edgetally.converters.accuracy.gate import DEFAULT_MAX_MAP_DROP, GateConfig
    from edgetally.converters.build import build_int8
    from edgetally.converters.package import package_fp32
    from edgetally.converters.targets import check_precision

    if request.eval_images is None:
        raise UsageError("--eval-images is required for FP16: the accuracy gate compares it with FP32 on them")
    profile = get_profile(request.profile) if request.profile else None
    target = resolve_target(profile, request.target)
    check_precision(target, "fp16")
    budget = DEFAULT_MAX_MAP_DROP if request.max_map_drop is None else request.max_map_drop
    with tempfile.TemporaryDirectory(prefix="edge-convert-") as tmp:
        reference = package_fp32(
            request.model, Path(tmp) / "fp32", request.decoder, request.input_size, request.labels, **package_options
        )
        folds, eval_info = _folds(request, reference, calibrate=False)
        log(f"evaluation: {len(folds[0].images)} images")
        config = GateConfig(max_map_drop=budget, threads=request.threads)
        return build_int8(
            reference, request.out, target, folds, config, _options(request, profile, "fp16", eval_info), log=log
        )


def clean_output(out: Path) -> None:
    """Refuse to mix a new artifact into a directory holding something else."""
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise UsageError(f"{out}: exists and is not an artifact directory; choose an empty or new --out")
    if out.exists():
        shutil.rmtree(out)


def summary(artifact: Artifact | None, report: dict) -> str:
    """One readable block for the terminal: what was accepted and the figures that prove it."""
    if artifact is None:
        return f"no artifact: {report.get('attempts', [{}])[-1].get('reason', '')}"
    m = artifact.manifest
    lines = [
        f"wrote {artifact.directory}: {m.model_file} ({m.precision}, {m.runtime}), profile {report.get('profile')}"
    ]
    lines += _accuracy_lines(report)
    strategy = report.get("strategy") or {}
    quantised = f" on the {report['quantised_model']} model" if report.get("quantised_model") else ""
    lines.append(
        f"  strategy {strategy.get('name', 'fp32 fallback')}{quantised} after {len(report.get('attempts', []))} attempt(s)"
    )
    if report.get("float_layers"):
        lines.append(f"  kept float: {', '.join(report['float_layers'])}")
    sizes = report.get("sizes", {})
    if "ratio" in sizes:
        lines.append(f"  size {sizes['artifact_bytes']} B = {sizes['ratio']:.2f} x FP32")
    lines += _latency_lines(report, m.runtime)
    closest = report.get("closest") or {}
    if closest.get("speed"):  # --fallback shipped FP32: what the refused INT8 model would have given
        lines.append(
            f"  refused INT8 ({closest['strategy']}): {closest['sizes']['ratio']:.2f} x FP32 size, "
            f"{closest['speed']['statement']}"
        )
    lines.append(f"  conversion {report.get('conversion_seconds')} s; report {artifact.directory / 'report.json'}")
    return "\n".join(lines)


def _interval(accuracy: dict) -> str:
    ci = accuracy.get("map50_95_drop_ci95_points")
    words = f"; 95 % interval over these images {ci[0]:.2f} to {ci[1]:.2f}" if ci else ""
    if "map50_95_drop_points_with_mirrors" in accuracy:
        words += f"; with their mirrors {accuracy['map50_95_drop_points_with_mirrors']:.2f}, report only"
    return words


def _worst_fold_shares(row: dict) -> str:
    """The classes that lost most of the worst fold's drop, with their objects ("" when none lost any)."""
    from edgetally.converters.accuracy.gate import share_words

    shares_per_fold = row.get("largest_class_shares_per_fold")
    if not shares_per_fold or row["worst"] <= 0:
        return ""
    return share_words(shares_per_fold[row["per_fold"].index(row["worst"])])


def _accuracy_lines(report: dict) -> list[str]:
    accuracy = report.get("accuracy", {})
    lines = []
    if "map50_95_drop_points" in accuracy:
        lines.append(
            f"  mAP50-95 FP32 {100 * accuracy['fp32']['map50_95']:.2f} -> {100 * accuracy['candidate']['map50_95']:.2f} "
            f"(drop {accuracy['map50_95_drop_points']:.2f} points{_interval(accuracy)}), "
            f"agreement F1 {accuracy['agreement_f1_iou50']:.3f}"
        )
    elif accuracy:
        lines.append(f"  agreement F1 vs FP32 {accuracy.get('agreement_f1_iou50')}")
    folds = accuracy.get("folds", {})
    for key, what in (("map50_95_drop_points", "mAP50-95 drop"), ("holdout_agreement_f1", "holdout agreement F1")):
        if folds.get("count", 1) > 1 and key in folds:
            row = folds[key]
            lines.append(
                f"  {what} over {folds['count']} folds: {', '.join(f'{v:.2f}' for v in row['per_fold'])} "
                f"(worst {row['worst']:.2f}, spread {row['spread']:.2f})"
            )
            shares = _worst_fold_shares(row)
            if shares:
                lines.append(f"    the worst fold's largest class shares, points of its drop: {shares}")
    pooled = folds.get("pooled")
    if pooled:
        lo, hi = pooled["ci95_points"]
        lines.append(
            f"  mAP50-95 drop over the {pooled['images']} images of {pooled['folds']} folds pooled: "
            f"{pooled['map50_95_drop_points']:.2f} points (95 % interval {lo:.2f} to {hi:.2f}"
            + (
                f"; with their mirrors {pooled['with_mirrors']['map50_95_drop_points']:.2f}"
                if "with_mirrors" in pooled
                else ""
            )
            + "; report only)"
        )
    distill = report.get("distillation")
    if distill:
        lines.append(f"  activations {distill['activation']}: {distill['summary']}")
    return lines


def _latency_lines(report: dict, runtime: str) -> list[str]:
    from edgetally.latency import speed_words

    latency = report.get("latency", {})
    own = latency.get("runtime_fp32", [])
    precision = str(report.get("precision", "")).upper()
    lines = []
    for index, (fp32, cand) in enumerate(zip(latency.get("fp32", []), latency.get("candidate", []), strict=True)):
        line = (
            f"  latency {fp32['threads']} thread(s): FP32 ORT p50 {fp32['p50_ms']:.1f} ms, artifact p50 "
            f"{cand['p50_ms']:.1f} ms ({speed_words(cand['p50_ms'] / fp32['p50_ms'], precision, 'ORT FP32')})"
        )
        if index < len(own):
            line += (
                f"; {runtime} FP32 p50 {own[index]['p50_ms']:.1f} ms "
                f"({speed_words(cand['p50_ms'] / own[index]['p50_ms'], precision, runtime + ' FP32')})"
            )
        lines.append(line)
    cpu = latency.get("cpu")
    if isinstance(cpu, dict) and cpu.get("summary"):
        lines.append(f"  timed on {cpu['summary']}")
    if report.get("shipped"):
        lines.append(f"  shipped {report['shipped']}")
    return lines

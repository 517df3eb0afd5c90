"""``edge convert --precision int8|fp16 / --profile``: package FP32, (calibrate, quantise | halve), gate, report."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetally.profiles import Profile, get_profile
from edgetally.artifact import Artifact
from edgetally.errors import ConversionError, UsageError

MIN_EVAL_IMAGES = 16
# With labels the gate compares mAP, FP32 vs INT8 on the same boxes (paired): a camera's own validation
# split (`edge label` keeps the last 20 % of ~50 frames, each with many objects) is enough.
MIN_LABELLED_EVAL_IMAGES = 8


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


def resolve_target(profile: Profile | None) -> str:
    """The runtime the INT8 artifact is built for (onnxruntime unless a profile says otherwise)."""
    if profile is None:
        return "onnxruntime"
    if profile.io_dtype != "float32" and profile.runtime != "litert":
        raise ConversionError(f"profile {profile.name}: io_dtype {profile.io_dtype} (integer model input and output) "
                              "is implemented for TFLite (runtime litert) only")
    return profile.runtime


def _eval_set(request: Int8Request, calibration) -> tuple[list, dict]:
    from edgetally.converters.accuracy.evaluate import load_eval_set

    images_dir = request.eval_images
    if images_dir is None:
        if request.calib is None or not request.calib.is_dir():
            raise UsageError("--eval-images is required for the accuracy gate when --calib is a video")
        images_dir = request.calib  # the calibration folder's unused images, label-free unless labels given
    images = load_eval_set(images_dir, request.eval_labels, calibration.sha256 if calibration is not None else ())
    need = MIN_LABELLED_EVAL_IMAGES if request.eval_labels else MIN_EVAL_IMAGES
    if len(images) < need:
        raise UsageError(f"{images_dir}: only {len(images)} evaluation images not used for calibration; "
                         f"the gate needs at least {need}{' labelled' if request.eval_labels else ''} (give --eval-images)")
    info = {"images_dir": str(images_dir), "labels_dir": str(request.eval_labels) if request.eval_labels else None,
            "count": len(images), "excluded_calibration_images": calibration is not None,
            "metric": "COCO mAP50-95" if request.eval_labels else "agreement F1@IoU0.5 vs FP32"}
    return images, info


def convert_int8(request: Int8Request, package_options: Mapping[str, Any],
                 log: Callable[[str], None] = print) -> tuple[Artifact, dict]:
    """Run the whole INT8 conversion; raises ConversionError (exit 1) when the gate fails."""
    from edgetally.converters.accuracy.calibration import load_calibration
    from edgetally.converters.accuracy.gate import DEFAULT_MAX_MAP_DROP, GateConfig
    from edgetally.converters.build import build_int8
    from edgetally.converters.package import package_fp32

    profile = get_profile(request.profile) if request.profile else None
    target = resolve_target(profile)
    if request.calib is None:
        raise UsageError("--calib is required for INT8: an image folder or a video from the deployment camera")
    budget = DEFAULT_MAX_MAP_DROP if request.max_map_drop is None else request.max_map_drop
    with tempfile.TemporaryDirectory(prefix="edge-convert-") as tmp:
        reference = package_fp32(request.model, Path(tmp) / "fp32", request.decoder, request.input_size,
                                 request.labels, **package_options)
        calibration = load_calibration(request.calib, reference.manifest.input, request.calib_count)
        images, eval_info = _eval_set(request, calibration)
        log(f"calibration: {len(calibration)} images from {request.calib}; evaluation: {len(images)} images")
        config = GateConfig(max_map_drop=budget, threads=request.threads)
        if target == "tensorrt":
            from edgetally.converters.targets.tensorrt import build_tensorrt

            return build_tensorrt(reference, request.out, calibration, images, config, profile, eval_info, log)
        return build_int8(reference, request.out, target, calibration, images, config, fallback=request.fallback,
                          profile=profile.name if profile else None, eval_info=eval_info, log=log,
                          latency_runs=request.latency_runs, io_dtype=profile.io_dtype if profile else "float32")


def convert_fp16(request: Int8Request, package_options: Mapping[str, Any],
                 log: Callable[[str], None] = print) -> tuple[Artifact, dict]:
    """``--precision fp16``: the profile's runtime FP16 model, accepted only through the accuracy gate."""
    from edgetally.converters.accuracy.gate import DEFAULT_MAX_MAP_DROP, GateConfig
    from edgetally.converters.build import build_int8
    from edgetally.converters.package import package_fp32

    if request.eval_images is None:
        raise UsageError("--eval-images is required for FP16: the accuracy gate compares it with FP32 on them")
    profile = get_profile(request.profile) if request.profile else None
    target = profile.runtime if profile else "onnxruntime"
    if target == "tensorrt":
        raise UsageError(f"profile {profile.name}: its INT8 artifact already carries model.fp16.onnx and the "
                         "trtexec --fp16 line: drop --precision fp16")
    if target == "litert":
        raise ConversionError(f"profile {profile.name}: FP16 TFLite is not implemented; use an onnxruntime or "
                              "openvino profile, or no profile (onnxruntime)")
    budget = DEFAULT_MAX_MAP_DROP if request.max_map_drop is None else request.max_map_drop
    with tempfile.TemporaryDirectory(prefix="edge-convert-") as tmp:
        reference = package_fp32(request.model, Path(tmp) / "fp32", request.decoder, request.input_size,
                                 request.labels, **package_options)
        images, eval_info = _eval_set(request, None)
        log(f"evaluation: {len(images)} images")
        config = GateConfig(max_map_drop=budget, threads=request.threads)
        return build_int8(reference, request.out, target, None, images, config, fallback=request.fallback,
                          profile=profile.name if profile else None, eval_info=eval_info, log=log, precision="fp16",
                          latency_runs=request.latency_runs)


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
    lines = [f"wrote {artifact.directory}: {m.model_file} ({m.precision}, {m.runtime}), profile {report.get('profile')}"]
    strategy = report.get("strategy") or {}
    accuracy = report.get("accuracy", {})
    if "map50_95_drop_points" in accuracy:
        lines.append(f"  mAP50-95 FP32 {100 * accuracy['fp32']['map50_95']:.2f} -> {100 * accuracy['candidate']['map50_95']:.2f} "
                     f"(drop {accuracy['map50_95_drop_points']:.2f} points), agreement F1 {accuracy['agreement_f1_iou50']:.3f}")
    elif accuracy:
        lines.append(f"  agreement F1 vs FP32 {accuracy.get('agreement_f1_iou50')}")
    lines.append(f"  strategy {strategy.get('name', 'fp32 fallback')} after {len(report.get('attempts', []))} attempt(s)")
    sizes = report.get("sizes", {})
    if "ratio" in sizes:
        lines.append(f"  size {sizes['artifact_bytes']} B = {sizes['ratio']:.2f} x FP32")
    latency = report.get("latency", {})
    own = latency.get("runtime_fp32", [])
    for index, (fp32, cand) in enumerate(zip(latency.get("fp32", []), latency.get("candidate", []))):
        line = (f"  latency {fp32['threads']} thread(s): FP32 ORT p50 {fp32['p50_ms']:.1f} ms, "
                f"artifact p50 {cand['p50_ms']:.1f} ms ({cand['p50_ms'] / fp32['p50_ms']:.2f}x)")
        if index < len(own):
            line += f"; {m.runtime} FP32 p50 {own[index]['p50_ms']:.1f} ms ({cand['p50_ms'] / own[index]['p50_ms']:.2f}x)"
        lines.append(line)
    lines.append(f"  conversion {report.get('conversion_seconds')} s; report {artifact.directory / 'report.json'}")
    return "\n".join(lines)

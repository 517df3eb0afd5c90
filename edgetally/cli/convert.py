"""``edge convert``: a trained detector -> an artifact directory (model + manifest.json).

The ``edge`` group attaches ``convert`` lazily, so the runner never imports this module unless
asked to convert. Only click, pathlib and the error classes are imported here; the converter
stack is imported inside the command.

``--precision fp32`` packages; ``--precision int8`` / ``--profile`` hand over to
``edgetally.converters.convert`` (calibrate, quantise, accuracy gate, report.json); ``--precision fp16``
builds the runtime's FP16 model through the same gate (no calibration). Options that do not apply
to the chosen precision raise instead of being silently ignored.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from edgetally.converters.graph.activations import DEFAULT_SHARE
from edgetally.converters.targets import TARGETS
from edgetally.errors import UsageError
from edgetally.postprocess import DECODERS

ACTIVATIONS = ("auto", "relu", "hardswish")
DEFAULT_FOLDS = 3
DEFAULT_DISTILL_S = 15 * 60.0


def _parse_duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """'15m' / '90s' / '1h' / '600' (seconds) -> seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600}.get(text[-1:])
    try:
        seconds = float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected a duration such as 15m, 90s or 1h") from None
    if seconds <= 0:
        raise click.BadParameter(f"{value!r}: must be positive")
    return seconds


def _parse_input_size(_ctx: click.Context, _param: click.Parameter, value: str) -> int | tuple[int, int]:
    """'416' -> 416; '384x640' or '384,640' -> (384, 640) as (height, width)."""
    parts = value.lower().replace(",", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected N or HxW, e.g. 416 or 384x640") from None
    if len(dims) not in (1, 2) or any(d <= 0 for d in dims):
        raise click.BadParameter(f"{value!r}: expected N or HxW with positive numbers")
    return dims[0] if len(dims) == 1 else (dims[0], dims[1])


def _floats(_ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        values = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected 1 or 3 comma-separated numbers") from None
    if len(values) not in (1, 3):
        raise click.BadParameter(f"{value!r}: expected 1 or 3 comma-separated numbers")
    return values


def _ints(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected comma-separated integers, e.g. 8,16,32") from None


def _roles(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    roles = {}
    for item in value:
        name, sep, role = item.partition("=")
        if not sep or not name or not role:
            raise click.BadParameter(f"{item!r}: expected OUTPUT_NAME=ROLE, e.g. boxes=boxes")
        roles[name] = role
    return roles


INT8_ONLY = (
    "--calib",
    "--folds",
    "--holdout",
    "--activation",
    "--activation-share",
    "--distill-budget",
    "--distill-steps",
    "--distill-images",
    "--distill-device",
)


def _check_precision_options(precision: str, profile: str | None, gated: dict[str, object]) -> None:
    """Refuse options that do not apply to ``precision`` instead of silently ignoring them."""
    given = [name for name, value in gated.items() if value not in (None, False)]
    if precision == "int8":
        if "--distill-budget" in given and "--distill-steps" in given:
            raise UsageError("give --distill-budget (a time) or --distill-steps (a step count), not both")
        for name in (
            "--distill-budget",
            "--distill-steps",
            "--distill-images",
            "--distill-device",
            "--activation-share",
        ):
            if name in given and "--activation" not in given:
                raise UsageError(f"{name} applies only with --activation (distillation after replacing SiLU)")
        return
    if precision == "fp16":
        int8_only = [n for n in given if n in INT8_ONLY]
        if int8_only:
            verb = "applies" if len(int8_only) == 1 else "apply"
            raise UsageError(f"{', '.join(int8_only)} {verb} only to --precision int8 (FP16 needs no calibration)")
        return
    if profile is not None:
        raise UsageError(f"--profile {profile} builds the profile's INT8 artifact: drop --precision fp32")
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise UsageError(f"{', '.join(given)}: {verb} only to --precision int8 or fp16")


@click.command("convert")
@click.argument("model", metavar="MODEL")
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="State_dict for a module:factory MODEL (loaded with torch.load(weights_only=True)).",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "int8"]),
    default=None,
    help="fp32 (default), int8 (default with --profile), or fp16; int8/fp16 pass the accuracy gate.",
)
@click.option(
    "--decoder", "decoder", type=click.Choice(sorted(DECODERS)), required=True, help="How to read the model's outputs."
)
@click.option(
    "--input-size", callback=_parse_input_size, required=True, metavar="N|HxW", help="N or HxW, e.g. 416 or 384x640."
)
@click.option(
    "--labels",
    default="coco80",
    show_default=True,
    help="'coco80' or a .txt (one name per line) / .yaml ('names:') file, in class order.",
)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Artifact directory.")
@click.option("--profile", default=None, help="Device profile (picks format/runtime; with INT8).")
@click.option(
    "--target",
    type=click.Choice(list(TARGETS)),
    default=None,
    help="Conversion target (default: the profile's, else onnxruntime); `edge profiles` lists the boards.",
)
@click.option("--calib", type=click.Path(path_type=Path), default=None, help="Calibration images or video (INT8).")
@click.option(
    "--eval-images",
    type=click.Path(path_type=Path),
    default=None,
    help="Images for the accuracy gate (default: the --calib folder's images not used for calibration).",
)
@click.option(
    "--eval-labels",
    type=click.Path(path_type=Path),
    default=None,
    help="YOLO labels for --eval-images: the gate compares mAP50-95 with FP32 (and reports it with each image's mirror "
    "too, and which classes lost most of each fold's drop).",
)
@click.option(
    "--holdout",
    type=click.Path(path_type=Path),
    default=None,
    help="Unlabelled video/images from the deployment camera: INT8 must agree with FP32 on them too "
    "(the --calib video itself is split in time: never the same segment for both) (INT8).",
)
@click.option(
    "--folds",
    type=click.IntRange(1),
    default=None,
    help="K-fold calibration/evaluation splits; every fold must pass, the worst decides; default 3 (INT8).",
)
@click.option(
    "--activation",
    type=click.Choice(ACTIVATIONS),
    default=None,
    help="Replace SiLU with an activation the target's INT8 kernels fuse (auto: the target's), then "
    "recover accuracy by distillation from FP32 on unlabelled images before quantising (INT8).",
)
@click.option(
    "--activation-share",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    metavar="SHARE",
    help="With --activation: replace SiLU on the largest feature maps only, whole resolutions at a time, "
    f"until they hold this share of all SiLU output elements (what the activations cost); the small deep "
    f"maps keep SiLU (default {DEFAULT_SHARE}; 1: every SiLU).",
)
@click.option(
    "--distill-budget",
    callback=_parse_duration,
    default=None,
    metavar="DURATION",
    help="Time budget for distillation, e.g. 15m (default), 90s, 1h (with --activation). The weights kept are "
    "those that score best on held-out unlabelled images: the refit's own when no gradient step improves on them. "
    "When steps were kept and no rung of the gate passes with them, the refit's weights are quantised and gated too.",
)
@click.option(
    "--distill-steps",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Exactly N gradient steps instead of a time budget (with --activation), however long they take: a time "
    "budget runs a different number of steps on every run, and the INT8 model moves with them. report.json's "
    "distillation.steps of an earlier run repeats it.",
)
@click.option(
    "--distill-images",
    type=click.Path(path_type=Path),
    default=None,
    help="More unlabelled images or a video for distillation (default: the --calib source) (with --activation).",
)
@click.option(
    "--distill-device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="Where the gradient steps run (with --activation): cpu (default), or cuda on a workstation with an "
    "NVIDIA GPU and a CUDA build of torch: more steps in the same time budget (the refit and the gate stay on "
    "the CPU). A GPU's arithmetic differs from the CPU's: the same --distill-steps gives a slightly different student.",
)
@click.option("--max-map-drop", type=float, default=None, help="Accuracy gate: max mAP50-95 points lost (default 1.0).")
@click.option("--fallback", is_flag=True, default=False, help="Ship FP32 if no INT8/FP16 model passes the gate.")
@click.option(
    "--calib-count",
    type=click.IntRange(8),
    default=64,
    show_default=True,
    help="Calibration images/frames to use (picked evenly) (INT8).",
)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True, help="Threads for evaluation (INT8).")
@click.option(
    "--latency-runs",
    type=click.IntRange(0),
    default=None,
    help="Timed runs per model for report.json's latency table, default 100 (0: skip) (INT8/FP16).",
)
@click.option("--color", type=click.Choice(["BGR", "RGB"]), default=None, help="Override the family's colour order.")
@click.option(
    "--mean", callback=_floats, default=None, metavar="V[,V,V]", help="Override mean: 1 or 3 values on 0-255 pixels."
)
@click.option(
    "--std",
    callback=_floats,
    default=None,
    metavar="V[,V,V]",
    help="Override std: 1 or 3 values (255 = scale to 0..1).",
)
@click.option("--letterbox-align", type=click.Choice(["top-left", "center"]), default=None)
@click.option("--pad-value", type=click.IntRange(0, 255), default=None)
@click.option("--resize", type=click.Choice(["letterbox", "stretch"]), default=None)
@click.option("--strides", callback=_ints, default=None, metavar="S,S,...", help="Head strides, default 8,16,32.")
@click.option("--score-threshold", type=click.FloatRange(0, 1), default=None)
@click.option("--nms-iou", type=click.FloatRange(0, 1), default=None)
@click.option("--max-detections", type=click.IntRange(1), default=None)
@click.option("--class-agnostic-nms", is_flag=True, default=None)
@click.option(
    "--drop-contained",
    type=click.FloatRange(0, 1),
    default=None,
    metavar="FRACTION",
    help="After NMS, drop a box sharing FRACTION of the smaller box's area with a better one, any class "
    "(a vehicle's half or a truck's cab boxed inside it on a top-down view); 0 = off. `edge train` "
    "picks it on the validation frames.",
)
@click.option("--boxes-normalized", is_flag=True, default=None, help="boxes_scores: boxes are 0..1.")
@click.option(
    "--output-role",
    "output_roles",
    multiple=True,
    callback=_roles,
    metavar="NAME=ROLE",
    help="boxes_scores: NAME=boxes|scores|class_ids|count (repeatable); guessed when absent.",
)
def convert(
    model: str,
    checkpoint: Path | None,
    precision: str | None,
    decoder: str,
    input_size: int | tuple[int, int],
    labels: str,
    out: Path,
    profile: str | None,
    target: str | None,
    calib: Path | None,
    eval_images: Path | None,
    eval_labels: Path | None,
    holdout: Path | None,
    folds: int | None,
    activation: str | None,
    activation_share: float | None,
    distill_budget: float | None,
    distill_steps: int | None,
    distill_images: Path | None,
    distill_device: str | None,
    max_map_drop: float | None,
    fallback: bool,
    output_roles: dict[str, str],
    calib_count: int,
    threads: int,
    latency_runs: int | None,
    **overrides: object,
) -> None:
    """Package MODEL as an artifact directory for `edge run`; with --precision int8 or --profile, quantise
    it (--precision fp16: halve it) and accept it only if it passes the accuracy gate (report.json).

    MODEL: an ONNX file; or PyTorch: package.module:factory with --checkpoint FILE (a state_dict), a
    TorchScript file, or a torch.export .pt2 -- exported to ONNX (opset 13, input 'images') first."""
    precision = precision or ("int8" if profile or target else "fp32")
    _check_precision_options(
        precision,
        profile,
        {
            "--calib": calib,
            "--eval-images": eval_images,
            "--eval-labels": eval_labels,
            "--holdout": holdout,
            "--folds": folds,
            "--activation": activation,
            "--activation-share": activation_share,
            "--distill-budget": distill_budget,
            "--distill-steps": distill_steps,
            "--distill-images": distill_images,
            "--distill-device": distill_device,
            "--max-map-drop": max_map_drop,
            "--fallback": fallback,
            "--latency-runs": latency_runs,
            "--target": target,
        },
    )
    if distill_device == "cuda":
        from edgetally.converters.distill import check_device

        check_device(distill_device)  # before minutes of export and calibration
    from edgetally.converters.package import DECODER_KEYS, PREPROCESS_KEYS, package_fp32

    options = {
        "preprocess": {k: overrides[k] for k in PREPROCESS_KEYS},
        "decoder_options": {k: overrides[k] for k in DECODER_KEYS},
        "output_roles": output_roles,
    }
    with tempfile.TemporaryDirectory(prefix="edge-torch-export-") as tmp:
        # The exported ONNX is packaged (copied) like any ONNX input: the FP32 artifact's model file, or
        # the INT8 artifact's reference/. Nothing lands in --out unless packaging passes its checks.
        onnx_model, exported = _onnx_input(model, checkpoint, input_size, Path(tmp))
        if precision in ("int8", "fp16"):
            from edgetally.converters.convert import Int8Request, convert_fp16, convert_int8, summary

            request = Int8Request(
                onnx_model,
                out,
                decoder,
                input_size,
                labels,
                calib,
                eval_images,
                eval_labels,
                max_map_drop,
                fallback,
                profile,
                calib_count,
                threads,
                100 if latency_runs is None else latency_runs,
                target,
                DEFAULT_FOLDS if folds is None else folds,
                holdout,
                activation,
                DEFAULT_DISTILL_S if distill_budget is None else distill_budget,
                distill_images,
                DEFAULT_SHARE if activation_share is None else activation_share,
                distill_steps,
                distill_device or "cpu",
            )
            build = convert_int8 if precision == "int8" else convert_fp16
            artifact, report = build(request, options, log=lambda m: click.echo(m, err=True))
            click.echo(summary(artifact, report))
            return
        artifact = package_fp32(onnx_model, out, decoder, input_size, labels, **options)
    if exported is not None:
        from edgetally.converters.torch_export import record_export

        artifact = record_export(artifact, exported)
    m = artifact.manifest
    shapes = ", ".join(f"{o.name}{o.shape}" for o in m.outputs)
    click.echo(
        f"wrote {artifact.directory}: {m.model_file} ({m.precision}, {m.runtime}), decoder {m.decoder.family}, "
        f"{len(m.labels)} classes, input {m.input.name}{m.input.shape} {m.input.color}, outputs {shapes}"
    )


def _onnx_input(model: str, checkpoint: Path | None, input_size: int | tuple[int, int], work_dir: Path):
    """(ONNX path, TorchExport or None): PyTorch inputs are exported into ``work_dir`` first."""
    from edgetally.converters.torch_export import export_to_onnx, is_torch_model, onnx_name

    if not is_torch_model(model):
        if checkpoint is not None:
            raise UsageError(f"--checkpoint applies to a PyTorch module:factory MODEL, not to {model}")
        return Path(model), None
    exported = export_to_onnx(model, work_dir / onnx_name(model, checkpoint), input_size, checkpoint)
    return exported.onnx_path, exported


@click.command("verify")
@click.argument("artifact", type=click.Path(path_type=Path, file_okay=False))
@click.option("--eval-images", type=click.Path(path_type=Path), required=True, help="Images to re-check on.")
@click.option(
    "--eval-labels",
    type=click.Path(path_type=Path),
    default=None,
    help="YOLO labels: mAP50-95 (also reported with each image's mirror); without them, agreement F1.",
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="FP32 artifact to compare with (default: ARTIFACT/reference).",
)
@click.option(
    "--max-map-drop", type=float, default=1.0, show_default=True, help="mAP50-95 points the artifact may lose."
)
@click.option(
    "--min-agreement",
    type=click.FloatRange(0, 1),
    default=0.85,
    show_default=True,
    help="Label-free: minimum F1 agreement with FP32.",
)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Use at most N images (sorted order).")
def verify_command(
    artifact: Path,
    eval_images: Path,
    eval_labels: Path | None,
    reference: Path | None,
    max_map_drop: float,
    min_agreement: float,
    threads: int,
    limit: int | None,
) -> None:
    """Re-check ARTIFACT against its FP32 reference: exit 0 if it passes the accuracy gate, 1 if not."""
    from edgetally.converters.accuracy.gate import GateConfig
    from edgetally.converters.accuracy.verify import verify
    from edgetally.errors import ConversionError

    config = GateConfig(max_map_drop=max_map_drop, min_agreement=min_agreement, threads=threads)
    verdict = verify(artifact, eval_images, eval_labels, reference, config, limit=limit)
    if not verdict.passed:
        raise ConversionError(f"{artifact}: REJECTED: {verdict.reason}")
    click.echo(f"{artifact}: PASS: {verdict.reason}")


@click.command("profiles")
def profiles_command() -> None:
    """List the device profiles (edgetally/device_configs/*.yaml)."""
    from edgetally.profiles import PROFILES_DIR, list_profiles

    rows = [("profile", "runtime", "format", "precision", "input", "threads", "int8_pays", "board")]
    rows += [
        (p.name, p.runtime, p.format, p.precision, f"{p.input_size}px", str(p.threads), str(p.int8_pays), p.board)
        for p in list_profiles()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    click.echo(f"(the YAML files in edgetally/{PROFILES_DIR.name}/; use one with `edge convert --profile NAME`)")

"""``edge convert``: a trained detector -> an artifact directory (model + manifest.json).

The ``edge`` group attaches ``convert`` lazily, so the runner never imports this module unless
asked to convert. Only click, pathlib and the error classes are imported here; the converter
stack is imported inside the command.

Today only ``--precision fp32`` packaging works. The INT8 options (--profile, --calib, --eval-*,
--max-map-drop, --fallback) are accepted by the parser so scripts can be written against the final
interface, and raise a clear UsageError until the converters issue lands. Options that do not
apply to the chosen precision raise instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path

import click

from edge.errors import UsageError

NOT_YET = "not implemented yet: comes with the converters issue"


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


def _check_precision_options(precision: str, profile: str | None, int8_only: dict[str, object]) -> None:
    """Refuse what cannot be done yet, and options that do not apply to ``precision``."""
    if precision != "fp32":
        raise UsageError(f"--precision {precision}: {NOT_YET}")
    if profile is not None:
        raise UsageError(f"--profile {profile}: {NOT_YET}")
    given = [name for name, value in int8_only.items() if value not in (None, False)]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise UsageError(f"{', '.join(given)}: {verb} only to --precision int8 ({NOT_YET})")


@click.command("convert")
@click.argument("model", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="Numeric precision of the artifact (only fp32 today).")
@click.option("--decoder", "decoder", type=click.Choice(["yolox", "yolov8", "boxes_scores"]), required=True,
              help="How to read the model's outputs.")
@click.option("--input-size", callback=_parse_input_size, required=True, metavar="N|HxW", help="N or HxW, e.g. 416 or 384x640.")
@click.option("--labels", default="coco80", show_default=True,
              help="'coco80' or a .txt (one name per line) / .yaml ('names:') file, in class order.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Artifact directory.")
@click.option("--profile", default=None, help="Device profile (picks format/runtime; with INT8).")
@click.option("--calib", type=click.Path(path_type=Path), default=None, help="Calibration images or video (INT8).")
@click.option("--eval-images", type=click.Path(path_type=Path), default=None, help="Images for the accuracy gate (INT8).")
@click.option("--eval-labels", type=click.Path(path_type=Path), default=None, help="YOLO labels for --eval-images.")
@click.option("--max-map-drop", type=float, default=None, help="Accuracy gate: max mAP50-95 points lost (default 1.0).")
@click.option("--fallback", is_flag=True, default=False, help="Keep sensitive layers in float if the gate fails.")
@click.option("--color", type=click.Choice(["BGR", "RGB"]), default=None, help="Override the family's colour order.")
@click.option("--mean", callback=_floats, default=None, metavar="V[,V,V]", help="Override mean: 1 or 3 values on 0-255 pixels.")
@click.option("--std", callback=_floats, default=None, metavar="V[,V,V]", help="Override std: 1 or 3 values (255 = scale to 0..1).")
@click.option("--letterbox-align", type=click.Choice(["top-left", "center"]), default=None)
@click.option("--pad-value", type=click.IntRange(0, 255), default=None)
@click.option("--resize", type=click.Choice(["letterbox", "stretch"]), default=None)
@click.option("--strides", callback=_ints, default=None, metavar="S,S,...", help="Head strides, default 8,16,32.")
@click.option("--score-threshold", type=click.FloatRange(0, 1), default=None)
@click.option("--nms-iou", type=click.FloatRange(0, 1), default=None)
@click.option("--max-detections", type=click.IntRange(1), default=None)
@click.option("--class-agnostic-nms", is_flag=True, default=None)
@click.option("--boxes-normalized", is_flag=True, default=None, help="boxes_scores: boxes are 0..1.")
@click.option("--output-role", "output_roles", multiple=True, callback=_roles, metavar="NAME=ROLE",
              help="boxes_scores: NAME=boxes|scores|class_ids|count (repeatable); guessed when absent.")
def convert(model: Path, precision: str, decoder: str, input_size: int | tuple[int, int], labels: str, out: Path,
            profile: str | None, calib: Path | None, eval_images: Path | None, eval_labels: Path | None,
            max_map_drop: float | None, fallback: bool, output_roles: dict[str, str], **overrides: object) -> None:
    """Package MODEL (an ONNX file) as an artifact directory for `edge run`."""
    _check_precision_options(precision, profile, {
        "--calib": calib, "--eval-images": eval_images, "--eval-labels": eval_labels,
        "--max-map-drop": max_map_drop, "--fallback": fallback,
    })
    from converters.package import DECODER_KEYS, PREPROCESS_KEYS, package_fp32

    artifact = package_fp32(
        model, out, decoder, input_size, labels,
        preprocess={k: overrides[k] for k in PREPROCESS_KEYS},
        decoder_options={k: overrides[k] for k in DECODER_KEYS},
        output_roles=output_roles,
    )
    m = artifact.manifest
    shapes = ", ".join(f"{o.name}{o.shape}" for o in m.outputs)
    click.echo(
        f"wrote {artifact.directory}: {m.model_file} ({m.precision}, {m.runtime}), decoder {m.decoder.family}, "
        f"{len(m.labels)} classes, input {m.input.name}{m.input.shape} {m.input.color}, outputs {shapes}"
    )

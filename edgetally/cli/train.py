"""``edge train``: fine-tune a detector on a labelled dataset from one camera (workstation, torch on the CPU).

Only click and pathlib at import time; torch and the converter stack load inside the command.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from edgetally.errors import UsageError


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    """'15m', '90s', '1h', '900' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value.lower())
    if not m:
        raise click.BadParameter(f"{value!r}: expected a duration such as 15m, 90s or 900")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds <= 0:
        raise click.BadParameter(f"{value!r}: must be positive")
    return seconds


def _lines(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> list[tuple[str, list[tuple[float, float]]]]:
    out = []
    for item in value:
        name, sep, coords = item.partition("=")
        try:
            x1, y1, x2, y2 = (float(v) for v in coords.split(","))
        except ValueError:
            raise click.BadParameter(f"{item!r}: expected NAME=x1,y1,x2,y2") from None
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=x1,y1,x2,y2")
        out.append((name, [(x1, y1), (x2, y2)]))
    return out


def _size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.lower().replace(",", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected HxW, e.g. 192x320") from None
    if h % 32 or w % 32 or h <= 0 or w <= 0:
        raise click.BadParameter(f"{value!r}: height and width must be positive multiples of 32")
    return h, w


@click.command("train")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option(
    "--from",
    "model",
    type=click.Path(path_type=Path),
    required=True,
    help="Base model: a YOLOX-family ONNX (e.g. yolox_nano.onnx) or a state_dict .pt of the project's "
    "small detector (models/demo/detector.pt).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for model.onnx, weights.pt, labels.txt and the report.",
)
@click.option(
    "--time-budget",
    callback=_duration,
    default="15m",
    show_default=True,
    help="Wall time for training (15m, 90s, ...); evaluation included. Too short to train: refused.",
)
@click.option("--batch", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-3,
    show_default=True,
    help="Peak learning rate (AdamW).",
)
@click.option(
    "--patience",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Stop after this many validations without a better mAP50-95.",
)
@click.option(
    "--eval-every", type=click.FloatRange(min=1), default=None, help="Seconds between validations (default budget/10)."
)
@click.option(
    "--base-labels",
    default=None,
    help="The base model's class names (coco80, a .txt or .yaml); default: "
    "labels.txt beside the model, else COCO-80 for an 80-class model.",
)
@click.option(
    "--input-size",
    callback=_size,
    default=None,
    metavar="HxW",
    help="Train and export at this input size (e.g. 256x416 for 16:9 frames: no rows of padding); "
    "default: the ONNX model's own, 192x320 for the small detector.",
)
@click.option(
    "--freeze",
    type=click.FloatRange(0, 0.9),
    default=0.5,
    show_default=True,
    help="Share of the convolutions (the early, high-resolution ones) kept as they are: faster steps, "
    "and a few dozen frames cannot spoil the generic features.",
)
@click.option("--hflip/--no-hflip", default=True, show_default=True, help="Horizontal flip augmentation.")
@click.option("--vflip", is_flag=True, default=False, help="Vertical flips too (overhead views: conveyors, drones).")
@click.option(
    "--clip",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A labelled clip to count on with the model before and after (needs --line).",
)
@click.option(
    "--line",
    "lines",
    multiple=True,
    callback=_lines,
    metavar="NAME=x1,y1,x2,y2",
    help="Counting line for --clip (repeatable).",
)
@click.option(
    "--truth",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="True counts for --clip (JSON with 'counts'): the report adds the counting error.",
)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train_command(
    dataset: Path,
    model: Path,
    out: Path,
    time_budget: float,
    batch: int,
    lr: float,
    patience: int,
    eval_every: float | None,
    base_labels: str | None,
    input_size: tuple[int, int] | None,
    freeze: float,
    hflip: bool,
    vflip: bool,
    clip: Path | None,
    lines: list,
    truth: Path | None,
    threads: int,
    seed: int,
) -> None:
    """Fine-tune MODEL on DATASET (an `edge label` export: YOLO format, train/val split by time).

    \b
    Writes OUT/model.onnx (same output contract as the base: the yolox decoder reads it), weights.pt,
    labels.txt, report.json / report.md (validation mAP50 and mAP50-95 before and after; with
    --clip and --line, counts before and after). Then quantise and gate it as usual:
      edge convert OUT/model.onnx --profile rpi5 --decoder yolox --input-size 416 --labels OUT/labels.txt \\
        --calib CAMERA_VIDEO --eval-images DATASET/images/val --eval-labels DATASET/labels/val --out art/
    """
    if (clip is None) != (not lines):
        raise UsageError("--clip and --line go together: a clip to count on and at least one line")
    if truth is not None and clip is None:
        raise UsageError("--truth applies to --clip")
    from edgetally.train.augment import AugmentConfig
    from edgetally.train.finetune import FinetuneRequest, finetune
    from edgetally.train.trainer import TrainConfig

    names = None
    if base_labels is not None:
        from edgetally.converters.labels import load_labels

        names = load_labels(base_labels)
    config = TrainConfig(
        budget_s=time_budget,
        batch=batch,
        lr=lr,
        patience=patience,
        eval_every_s=eval_every,
        seed=seed,
        freeze=freeze,
        augment=AugmentConfig(hflip=hflip, vflip=vflip),
    )
    request = FinetuneRequest(dataset, model, out, config, names, input_size, clip, lines, truth, threads)
    report = finetune(request, echo=lambda m: click.echo(m, err=True))
    click.echo(
        f"val mAP50 {report['map_before']['map50']:.3f} -> {report['map_after']['map50']:.3f}, "
        f"mAP50-95 {report['map_before']['map50_95']:.3f} -> {report['map_after']['map50_95']:.3f}; "
        f"wrote {out}/model.onnx and {out}/report.md"
    )

"""``edge label``: label frames of one camera in the browser, with boxes proposed by motion and the tracker."""

from __future__ import annotations

import time
from pathlib import Path

import click

from edgetally.errors import UsageError


@click.command("label")
@click.argument("source", metavar="VIDEO|FRAMES_DIR")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Labels folder: session.json, actions.jsonl, frames/. An existing session is resumed.",
)
@click.option(
    "--classes", default=None, help="Class names, comma-separated (e.g. car,truck,bus). Needed for a new session."
)
@click.option(
    "--frames",
    "count",
    type=click.IntRange(2, 2000),
    default=50,
    show_default=True,
    help="How many frames to sample (spread over time, most motion and change).",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Current detector artifact (edge convert output): its boxes are proposed too, its classes suggested.",
)
@click.option(
    "--dataset",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where 'export' writes the YOLO dataset (default OUT/dataset).",
)
@click.option(
    "--export",
    "export_only",
    is_flag=True,
    default=False,
    help="Do not serve: export the done frames to the dataset and exit.",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0.05, 0.5),
    default=0.2,
    show_default=True,
    help="Share of done frames (the last block in time) kept for validation.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to serve on (default: this machine only)."
)
def label_command(
    source: str,
    out: Path,
    classes: str | None,
    count: int,
    model: Path | None,
    dataset: Path | None,
    export_only: bool,
    val_fraction: float,
    port: int,
    host: str,
) -> None:
    """Sample VIDEO (or a folder of a device's recent frames) into OUT and serve a labelling page.

    \b
    Moving objects come proposed (background subtraction, linked into tracks by the tracker): press a
    number to give a whole track its class, x to delete a false box, drag to draw a missed one, Enter
    when the frame is right. Every change is saved at once. Then:
      edge label VIDEO --out OUT --export        # OUT/dataset: YOLO format, train/val split by time
      edge train OUT/dataset --from yolox_nano.onnx --out tuned/
    """
    from edgetally.label.export import export_dataset
    from edgetally.label.session import start_session
    from edgetally.label.store import SESSION

    names = [c for c in (classes or "").split(",") if c.strip()]
    if not names and not (out / SESSION).is_file():
        raise UsageError("--classes is needed to start a new session (e.g. --classes car,truck,bus)")
    store = start_session(source, out, names, count, model, say=lambda m: click.echo(m, err=True))
    target = dataset or out / "dataset"
    if export_only:
        click.echo(export_dataset(store, target, val_fraction).line())
        return
    from edgetally.label.server import LabelServer

    server = LabelServer(store, target, port, host, val_fraction).start()
    click.echo(f"labelling page: {server.url}  (Ctrl+C to stop; every change is already saved in {out})", err=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()

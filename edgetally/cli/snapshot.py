"""`edge snapshot`: one annotated frame (grid, lines, optional detections) to place counting lines."""

from __future__ import annotations

from pathlib import Path

import click

from edgetally.annotate import DrawLine
from edgetally.errors import CameraError, ConfigError


def parse_lines(values: tuple[str, ...]) -> list[DrawLine]:
    """'NAME=x1,y1,x2,y2' -> DrawLine (validated like `edge run --line`)."""
    from pydantic import ValidationError

    from edgetally.config.models import LineSettings

    out = []
    for value in values:
        name, sep, coords = value.partition("=")
        try:
            line = LineSettings(name=name, points=coords) if sep else None
        except ValidationError as exc:
            raise ConfigError(f"--line {value!r}: {exc.errors()[0]['msg']}") from exc
        if line is None:
            raise ConfigError(f"--line: expected NAME=x1,y1,x2,y2, got {value!r}")
        out.append(DrawLine(line.name, tuple(line.points[0]), tuple(line.points[1])))
    return out


def grab_frame(source: str, index: int):  # -> Frame
    """Frame ``index`` of ``source`` (0 = the first one a camera delivers)."""
    from edgetally.capture import open_source

    src = open_source(source)
    try:
        for frame in src:
            if frame.index >= index:
                return frame
    finally:
        src.close()
    raise CameraError(f"{source}: ended before frame {index}")


def detect(model: Path, image, score_threshold: float | None):  # -> (Detections, labels)
    from edgetally.detector import Detector

    detector = Detector.from_artifact(model, score_threshold=score_threshold)
    return detector(image), detector.labels


@click.command("snapshot")
@click.option("--source", required=True, help="Video file, image folder, /dev/videoN, rtsp://, http(s)://, ...")
@click.option("--line", "lines", multiple=True, metavar="NAME=x1,y1,x2,y2", help="Counting line to draw. Repeatable.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("snapshot.jpg"), show_default=True)
@click.option("--frame", "index", type=click.IntRange(0), default=0, show_default=True, help="Frame number to grab.")
@click.option("--grid", type=click.IntRange(0), default=40, show_default=True, help="Grid step in pixels (0 = none).")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Artifact: also draw its detections.")
@click.option("--score-threshold", type=float, default=None, help="With --model: override the manifest's threshold.")
def snapshot_command(
    source: str,
    lines: tuple[str, ...],
    out: Path,
    index: int,
    grid: int,
    model: Path | None,
    score_threshold: float | None,
) -> None:
    """Write one frame with a pixel grid and the counting lines drawn: pick line coordinates from it."""
    import cv2

    from edgetally.annotate import snapshot_image

    drawn = parse_lines(lines)
    frame = grab_frame(source, index)
    detections, labels = detect(model, frame.image, score_threshold) if model is not None else (None, [])
    img = snapshot_image(frame.image, drawn, detections, labels, grid)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), img):
        raise ConfigError(f"--out {out}: cannot write the image (use a .jpg or .png name)")
    h, w = img.shape[:2]
    n = "" if detections is None else f", {len(detections)} detections"
    click.echo(f"wrote {out}: frame {frame.index}, {w}x{h} px, {len(drawn)} line(s){n}")

"""`edge run` and `edge validate-config`: count with a converted model; check run configs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from edgetally.errors import ConfigError

if TYPE_CHECKING:
    from edgetally.hooks import Hook


def _parse_named(values: Sequence[str], option: str, key: str) -> list[dict[str, Any]]:
    """'NAME=x1,y1,x2,y2' -> {'name': NAME, key: 'x1,y1,x2,y2'} (coordinates validated by pydantic)."""
    parsed = []
    for value in values:
        name, sep, coords = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=x1,y1,x2,y2,..., got {value!r}", param_hint=option)
        parsed.append({"name": name, key: coords})
    return parsed


def _settings(config: Path | None, flags: dict[str, Any]):  # -> RunSettings
    from edgetally.config import RunSettings, load_config

    overrides = {k: v for k, v in flags.items() if v not in (None, (), [])}
    if config is not None:
        return load_config(config, overrides)
    missing = [f"--{k}" for k in ("model", "source") if k not in overrides]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} required (or --config FILE)")
    try:
        return RunSettings.model_validate(overrides)
    except ValidationError as exc:
        raise ConfigError("invalid options:\n  " + "\n  ".join(_flag_error(e) for e in exc.errors())) from exc


def _flag_error(error: Any) -> str:
    """One pydantic error as the user typed it: ``--detect-fps: must be > 0`` (not ``detect_fps: Value
    error, must be > 0``), ``--line #2 points: ...``; an error about several settings at once has no key."""
    message = str(error["msg"]).removeprefix("Value error, ")
    loc = [str(p) for p in error["loc"]]
    if not loc:
        return message
    head, rest = _FLAG_NAMES.get(loc[0], "--" + loc[0].replace("_", "-")), loc[1:]
    if rest and rest[0].isdigit():  # the n-th --line / --zone
        head, rest = f"{head} #{int(rest[0]) + 1}", rest[1:]
    return f"{head}{' ' + '.'.join(rest) if rest else ''}: {message}"


_FLAG_NAMES = {"lines": "--line", "zones": "--zone"}  # the settings whose flag is not their name


@click.command()
@click.option("--config", "config", type=click.Path(path_type=Path), help="YAML file with the settings below.")
@click.option("--model", type=click.Path(path_type=Path), help="Artifact directory (made by 'edge convert').")
@click.option("--source", help="Video file, image folder, /dev/videoN, rtsp://, http(s)://, gst:PIPELINE, picamera2:N.")
@click.option(
    "--line",
    "lines",
    multiple=True,
    metavar="NAME=x1,y1,x2,y2",
    help="Directed counting line in source pixels. 'in' = the object's anchor moves onto the "
    "right-hand side of the arrow (x1,y1)->(x2,y2) as drawn on screen; 'out' the reverse. Repeatable.",
)
@click.option(
    "--zone", "zones", multiple=True, metavar="NAME=x1,y1,x2,y2,x3,y3,...", help="Counting polygon. Repeatable."
)
@click.option("--classes", help="Comma-separated class names to track and count (default: all).")
@click.option("--threads", type=int, help="Inference threads (default 2).")
@click.option(
    "--score-threshold",
    type=float,
    help="Override the manifest's detection score threshold. Unset, the tracker also gets the boxes "
    "down to its low_score (0.1) to keep tracks alive; set, the tracker gets only boxes above it.",
)
@click.option("--max-detections", type=int, help="Override the manifest's max detections per frame.")
@click.option("--max-frames", type=int, help="Stop after N frames.")
@click.option(
    "--detect-every",
    metavar="K",
    help="Run the detector on every K-th frame; optical flow carries the "
    "tracks over the frames between (counts stay right on a board too slow for every frame).",
)
@click.option(
    "--detect-fps",
    metavar="auto|N",
    help="Run the detector N times per second of video, or 'auto': as "
    "often as it keeps up (on a live camera, on the newest frame whenever it is free). Default: every "
    "frame of a file; auto on a live camera.",
)
@click.option(
    "--events-out",
    type=click.Path(path_type=Path),
    help="Append one JSON line per count event (plus a run_start/run_end marker line per run).",
)
@click.option("--summary-json", type=click.Path(path_type=Path), help="Write totals, frames and fps at the end.")
@click.option(
    "--detections-out", type=click.Path(path_type=Path), help="Write per-frame detections (JSONL) before tracking."
)
@click.option("--device-id", help="Device id used by sinks (default: hostname).")
@click.option(
    "--mqtt", "mqtt_url", metavar="URL", help="Publish to an MQTT broker: mqtt://[user@]host[:port] or mqtts://..."
)
@click.option("--outbox", type=click.Path(path_type=Path), help="MQTT durable outbox file (default: $STATE_DIRECTORY).")
@click.option(
    "--health-addr",
    envvar="EDGE_HEALTH_ADDR",
    metavar="HOST:PORT",
    help="Serve /healthz and Prometheus /metrics here (e.g. 127.0.0.1:9108).",
)
@click.option(
    "--annotate",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="OUT.mp4",
    help="Also write a video with boxes, track ids, lines and running counts.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="X",
    help="Play a video file at X times its own speed, like a live camera (default: as fast as possible).",
)
def run(
    config: Path | None,
    model: Path | None,
    source: str | None,
    lines: tuple[str, ...],
    zones: tuple[str, ...],
    classes: str | None,
    threads: int | None,
    score_threshold: float | None,
    max_detections: int | None,
    max_frames: int | None,
    detect_every: str | None,
    detect_fps: str | None,
    events_out: Path | None,
    summary_json: Path | None,
    detections_out: Path | None,
    device_id: str | None,
    mqtt_url: str | None,
    outbox: Path | None,
    health_addr: str | None,
    annotate: Path | None,
    speed: float | None,
) -> None:
    """Count objects from a video or camera with a converted model."""
    from edgetally.runner import run_counting

    outputs = {
        k: v for k, v in (("events", events_out), ("summary", summary_json), ("detections", detections_out)) if v
    }
    flags: dict[str, Any] = {
        "model": model,
        "source": source,
        "classes": classes,
        "threads": threads,
        "score_threshold": score_threshold,
        "max_detections": max_detections,
        "max_frames": max_frames,
        "detect_every": detect_every,
        "detect_fps": detect_fps,
        "device_id": device_id,
        "lines": _parse_named(lines, "--line", "points") or None,
        "zones": _parse_named(zones, "--zone", "polygon") or None,
    }
    settings = _settings(config, flags)
    if mqtt_url or outbox:
        mqtt = {
            **(settings.mqtt or {}),
            **({"url": mqtt_url} if mqtt_url else {}),
            **({"outbox": str(outbox)} if outbox else {}),
        }
        settings = settings.model_copy(update={"mqtt": mqtt})
    if outputs:
        merged = {**settings.outputs.model_dump(exclude_none=True), **outputs}
        settings = settings.model_copy(update={"outputs": type(settings.outputs)(**merged)})
    if not settings.lines and not settings.zones:
        click.echo(
            "edge: warning: no --line or --zone (lines:/zones: in a config): nothing will be counted; "
            "place one with `edge snapshot --source ... --line NAME=x1,y1,x2,y2`",
            err=True,
        )
    reload = (lambda: _settings(config, flags)) if config is not None else None
    hooks: list[Hook] = []
    if annotate is not None:
        from edgetally.annotate import VideoAnnotator

        hooks.append(VideoAnnotator(annotate))
    if speed is not None:
        from edgetally.cli.demo import Pacer

        hooks.append(Pacer(speed))
    summary = run_counting(settings, reload=reload, health_addr=health_addr, hooks=hooks, config_path=config)
    click.echo(json.dumps(summary, indent=None))


@click.command("validate-config")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--no-model-check",
    is_flag=True,
    help="Do not require the model artifact to exist here (a config written for another machine).",
)
def validate_config(files: tuple[Path, ...], no_model_check: bool) -> None:
    """Check run config files; print every error as file:line: key: message. The model artifact
    (relative to the file) must exist unless --no-model-check."""
    from edgetally.config import validate_file

    errors = [e for f in files for e in validate_file(f, check_model=not no_model_check)]
    for error in errors:
        click.echo(error, err=True)
    if errors:
        raise SystemExit(2)
    click.echo(f"{len(files)} config file(s) OK")

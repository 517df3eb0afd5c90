"""The `edge` command. Subcommands that need heavy packages import them only when invoked."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import click
from pydantic import ValidationError

from edge import __version__
from edge.errors import ConfigError, EdgeError

log = logging.getLogger("edge")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose if verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edge")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """edgetally: count objects crossing lines and zones on edge devices.

    \b
    Typical use:
      edge convert yolox_nano.onnx --precision fp32 --decoder yolox --input-size 416 --labels coco80 --out art/
      edge run --model art/ --source video.mp4 --line L=320,0,320,360 --classes car,truck,bus
    """
    _setup_logging(verbose)


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
    from edge.config import RunSettings, load_config

    overrides = {k: v for k, v in flags.items() if v not in (None, (), [])}
    if config is not None:
        return load_config(config, overrides)
    missing = [f"--{k}" for k in ("model", "source") if k not in overrides]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} required (or --config FILE)")
    try:
        return RunSettings.model_validate(overrides)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid options:\n  " + "\n  ".join(lines)) from exc


@cli.command()
@click.option("--config", "config", type=click.Path(path_type=Path), help="YAML file with the settings below.")
@click.option("--model", type=click.Path(path_type=Path), help="Artifact directory (made by 'edge convert').")
@click.option("--source", help="Video file, image folder, /dev/videoN, rtsp://, http(s)://, gst:PIPELINE, picamera2:N.")
@click.option("--line", "lines", multiple=True, metavar="NAME=x1,y1,x2,y2",
              help="Directed counting line in source pixels. 'in' = the object's anchor moves onto the "
                   "right-hand side of the arrow (x1,y1)->(x2,y2) as drawn on screen; 'out' the reverse. Repeatable.")
@click.option("--zone", "zones", multiple=True, metavar="NAME=x1,y1,x2,y2,x3,y3,...", help="Counting polygon. Repeatable.")
@click.option("--classes", help="Comma-separated class names to track and count (default: all).")
@click.option("--threads", type=int, help="Inference threads (default 2).")
@click.option("--score-threshold", type=float, help="Override the manifest's detection score threshold.")
@click.option("--max-detections", type=int, help="Override the manifest's max detections per frame.")
@click.option("--max-frames", type=int, help="Stop after N frames.")
@click.option("--events-out", type=click.Path(path_type=Path), help="Write one JSON line per count event.")
@click.option("--summary-json", type=click.Path(path_type=Path), help="Write totals, frames and fps at the end.")
@click.option("--detections-out", type=click.Path(path_type=Path), help="Write per-frame detections (JSONL) before tracking.")
@click.option("--device-id", help="Device id used by sinks (default: hostname).")
@click.option("--mqtt", "mqtt_url", metavar="URL", help="Publish to an MQTT broker: mqtt://[user@]host[:port] or mqtts://...")
@click.option("--outbox", type=click.Path(path_type=Path), help="MQTT durable outbox file (default: $STATE_DIRECTORY).")
@click.option("--health-addr", envvar="EDGE_HEALTH_ADDR", metavar="HOST:PORT",
              help="Serve /healthz and Prometheus /metrics here (e.g. 127.0.0.1:9108).")
@click.option("--annotate", type=click.Path(path_type=Path, dir_okay=False), metavar="OUT.mp4",
              help="Also write a video with boxes, track ids, lines and running counts.")
def run(config: Path | None, model: Path | None, source: str | None, lines: tuple[str, ...], zones: tuple[str, ...],
        classes: str | None, threads: int | None, score_threshold: float | None, max_detections: int | None,
        max_frames: int | None, events_out: Path | None, summary_json: Path | None, detections_out: Path | None,
        device_id: str | None, mqtt_url: str | None, outbox: Path | None, health_addr: str | None,
        annotate: Path | None) -> None:
    """Count objects from a video or camera with a converted model."""
    from edge.runner import run_counting

    outputs = {k: v for k, v in (("events", events_out), ("summary", summary_json), ("detections", detections_out)) if v}
    flags: dict[str, Any] = {
        "model": model, "source": source, "classes": classes, "threads": threads,
        "score_threshold": score_threshold, "max_detections": max_detections, "max_frames": max_frames,
        "device_id": device_id,
        "lines": _parse_named(lines, "--line", "points") or None,
        "zones": _parse_named(zones, "--zone", "polygon") or None,
    }
    settings = _settings(config, flags)
    if mqtt_url or outbox:
        mqtt = {**(settings.mqtt or {}), **({"url": mqtt_url} if mqtt_url else {}), **({"outbox": str(outbox)} if outbox else {})}
        settings = settings.model_copy(update={"mqtt": mqtt})
    if outputs:
        merged = {**settings.outputs.model_dump(exclude_none=True), **outputs}
        settings = settings.model_copy(update={"outputs": type(settings.outputs)(**merged)})
    reload = (lambda: _settings(config, flags)) if config is not None else None
    observers = []
    if annotate is not None:
        from edge.annotate import VideoAnnotator

        observers.append(VideoAnnotator(annotate))
    summary = run_counting(settings, reload=reload, health_addr=health_addr, observers=observers)
    click.echo(json.dumps(summary, indent=None))


@cli.command("validate-config")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate_config(files: tuple[Path, ...]) -> None:
    """Check run config files; print every error as file:line: key: message."""
    from edge.config import validate_file

    errors = [e for f in files for e in validate_file(f)]
    for error in errors:
        click.echo(error, err=True)
    if errors:
        raise SystemExit(2)
    click.echo(f"{len(files)} config file(s) OK")


@cli.command()
@click.option("--model", required=True, type=click.Path(path_type=Path), help="Artifact directory.")
@click.option("--source", required=True, help="Video file to run (every frame is used).")
@click.option("--threads", type=int, default=2, show_default=True, help="Inference threads.")
@click.option("--max-frames", type=int, default=None, help="Use at most N frames.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench(model: Path, source: str, threads: int, max_frames: int | None, as_json: bool) -> None:
    """Measure inference-only FPS vs full pipeline FPS (decode+preprocess+infer+track+count)."""
    from edge.bench import format_report, run_bench

    report = run_bench(model, source, threads=threads, max_frames=max_frames)
    click.echo(json.dumps(report) if as_json else format_report(report))


def _lazy(name: str, module: str, attr: str) -> None:
    """Attach a subcommand whose module (and heavy imports) load only when it is invoked."""

    class Lazy(click.Command):
        def _real(self) -> click.Command:
            import importlib

            return getattr(importlib.import_module(module), attr)

        def get_help(self, ctx: click.Context) -> str:
            return self._real().get_help(ctx)

        def get_short_help_str(self, limit: int = 45) -> str:
            return self.help or ""

        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            return self._real().parse_args(ctx, args)

        def invoke(self, ctx: click.Context) -> Any:
            return self._real().invoke(ctx)

    cli.add_command(Lazy(name, help=_SHORT_HELP.get(name, "")))


_SHORT_HELP = {
    "convert": "Package or quantise a detector into an artifact.",
    "broker": "Run an embedded MQTT broker (needs the 'broker' extra).",
    "track": "Run the tracker on MOTChallenge detections; write MOT tracks.",
    "doctor": "Check cameras, runtimes, the artifact, config and broker on this box.",
    "bundle": "Build an offline-installable bundle for a board profile.",
    "provision": "Write first-boot (cloud-init) files for a Raspberry Pi or Jetson.",
    "verify": "Re-check an artifact's accuracy against its FP32 reference.",
    "profiles": "List the device profiles (board -> runtime, precision, input size).",
    "demo": "Run the whole chain on a synthetic scene: convert, count, MQTT, dashboard, truth.",
    "dashboard": "Serve a live web dashboard of the devices on an MQTT broker.",
    "snapshot": "Write one frame with a pixel grid and counting lines, to place lines.",
}
_LAZY = [
    ("convert", "converters.cli", "convert"),
    ("broker", "edge.sinks.broker", "broker_command"),
    ("track", "edge.tracking.cli_track", "track_command"),
    ("doctor", "edge.service.doctor", "doctor_command"),
    ("bundle", "edge.service.bundle", "bundle_command"),
    ("provision", "edge.service.provision", "provision_command"),
    ("verify", "converters.cli", "verify_command"),
    ("profiles", "converters.cli", "profiles_command"),
    ("demo", "edge.demo.command", "demo_command"),
    ("dashboard", "edge.dashboard.server", "dashboard_command"),
    ("snapshot", "edge.annotate_cli", "snapshot_command"),
]


def _attach_lazy() -> None:
    import importlib.util

    for name, module, attr in _LAZY:
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            _lazy(name, module, attr)


_attach_lazy()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: maps errors to exit codes (0 ok, 1 runtime failure, 2 usage/config error)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="edge", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("edge: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except EdgeError as exc:
        click.echo(f"edge: error: {exc}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `edge` command: the group, its error-to-exit-code mapping and the table of subcommands.

Every subcommand lives in its own module of this package and is imported only when invoked, so
`edge run` on a board never loads the converter stack.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from edgetally import __version__
from edgetally.errors import EdgeError


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


class _LazyCommand(click.Command):
    """A subcommand whose module (and its heavy imports) loads only when it is invoked or asked for help."""

    def __init__(self, name: str, module: str, attr: str, short_help: str) -> None:
        super().__init__(name, help=short_help)
        self._target = (module, attr)

    def _real(self) -> click.Command:
        module, attr = self._target
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def get_help(self, ctx: click.Context) -> str:
        return self._real().get_help(ctx)

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.help or ""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return self._real().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        return self._real().invoke(ctx)


# Every subcommand, once: name -> (module in edgetally.cli, click command, one-line help).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("run", "run", "Count objects from a video or camera with a converted model."),
    "validate-config": (
        "run",
        "validate_config",
        "Check run config files; print every error as file:line: key: message.",
    ),
    "bench": ("bench", "bench", "Measure inference-only FPS vs full pipeline FPS on a video."),
    "convert": ("convert", "convert", "Package or quantise a detector into an artifact."),
    "verify": ("convert", "verify_command", "Re-check an artifact's accuracy against its FP32 reference."),
    "profiles": ("convert", "profiles_command", "List the device profiles (board -> runtime, precision, input size)."),
    "snapshot": (
        "snapshot",
        "snapshot_command",
        "Write one frame with a pixel grid and counting lines, to place lines.",
    ),
    "track": ("track", "track_command", "Run the tracker on MOTChallenge detections; write MOT tracks."),
    "doctor": ("doctor", "doctor_command", "Check cameras, runtimes, the artifact, config and broker on this box."),
    "bundle": ("bundle", "bundle_command", "Build an offline-installable bundle for a board profile."),
    "provision": (
        "provision",
        "provision_command",
        "Write first-boot (cloud-init) files for a Raspberry Pi or Jetson.",
    ),
    "broker": ("broker", "broker_command", "Run an embedded MQTT broker (needs the 'broker' extra)."),
    "demo": (
        "demo",
        "demo_command",
        "Run the whole chain on a synthetic scene: convert, count, MQTT, dashboard, truth.",
    ),
    "dashboard": ("dashboard", "dashboard_command", "Serve a live web dashboard of the devices on an MQTT broker."),
    "report": (
        "report",
        "report_command",
        "Interval counts (and peak hours) from the device's history: CSV, JSON, Markdown.",
    ),
    "label": ("label", "label_command", "Label frames of one camera in the browser, with boxes proposed by motion."),
    "train": ("train", "train_command", "Fine-tune a detector on a labelled dataset (workstation, CPU)."),
    "collect": (
        "collect",
        "collect_command",
        "Store every device's counts from MQTT in PostgreSQL or SQLite, exactly once.",
    ),
}
for _name, (_module, _attr, _help) in COMMANDS.items():
    cli.add_command(_LazyCommand(_name, f"edgetally.cli.{_module}", _attr, _help))


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

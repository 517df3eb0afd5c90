"""`edge doctor`: one OK/WARN/FAIL table of what the board needs (cameras, runtimes, artifact, broker)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from edgetally.service.doctor import DEFAULT_CONFIG, DEFAULT_MODEL, format_table, run_checks


@click.command("doctor")
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Run config to check (default: {DEFAULT_CONFIG} when it exists).",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Artifact directory (default: the config's model, else {DEFAULT_MODEL} when it exists).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of the table.")
def doctor_command(config: Path | None, model: Path | None, as_json: bool) -> None:
    """Check cameras, runtimes, the artifact, the config and the MQTT broker on this board."""
    if config is None and DEFAULT_CONFIG.is_file():
        config = DEFAULT_CONFIG
    if model is None and config is None and DEFAULT_MODEL.is_dir():
        model = DEFAULT_MODEL
    checks = run_checks(config, model)
    click.echo(json.dumps([asdict(c) for c in checks]) if as_json else format_table(checks))
    failed = [c.name for c in checks if c.status == "FAIL"]
    if failed:
        if not as_json:
            click.echo(f"\n{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        raise SystemExit(1)

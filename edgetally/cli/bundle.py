"""`edge bundle`: one offline-installable tar.gz for a board profile."""

from __future__ import annotations

from pathlib import Path

import click

from edgetally.service.bundle import make_bundle


@click.command("bundle")
@click.option(
    "--profile",
    required=True,
    help="Device profile: a name from 'edge profiles' (or its unique start, e.g. "
    "'rpi5', 'jetson') or a profile YAML file.",
)
@click.option(
    "--artifact",
    required=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Artifact directory (made by 'edge convert').",
)
@click.option(
    "--config",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Run config for the board (its model: is replaced by the bundled artifact).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="BUNDLE.tar.gz to write.")
@click.option(
    "--with-deps",
    is_flag=True,
    help="Also download every dependency as wheels for the board's platform (offline install).",
)
@click.option(
    "--project",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project checkout to build the wheel from (default: this one).",
)
def bundle_command(
    profile: str, artifact: Path, config: Path, out: Path, with_deps: bool, project: Path | None
) -> None:
    """Build BUNDLE.tar.gz: wheel(s), artifact, config, systemd unit + drop-ins, install.sh."""
    path = make_bundle(profile, artifact, config, out, with_deps, project)
    click.echo(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); on the board: "
        f"tar xzf {path.name} && sudo ./edgetally-bundle/install.sh"
    )

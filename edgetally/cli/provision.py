"""`edge provision`: first-boot files for a Raspberry Pi (cloud-init) or a Jetson (post-flash kit)."""

from __future__ import annotations

from pathlib import Path

import click

from edgetally.service.provision import Board, provision_jetson, provision_pi, read_ssh_keys


@click.command("provision")
@click.option("--target", type=click.Choice(["rpi", "jetson"]), default="rpi", show_default=True)
@click.option("--boot", type=click.Path(path_type=Path, file_okay=False), help="rpi: the mounted boot partition.")
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), help="jetson: directory for the post-flash kit."
)
@click.option(
    "--bundle", required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False), help="From 'edge bundle'."
)
@click.option("--hostname", required=True, help="Also the default MQTT device id.")
@click.option("--user", default="edge", show_default=True, help="Admin user (SSH key login only, sudo).")
@click.option("--ssh-key", "ssh_keys", multiple=True, required=True, help="Public key or a .pub file. Repeatable.")
@click.option("--wifi-ssid", help="Wi-Fi network (omit for Ethernet only).")
@click.option("--wifi-password-file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--wifi-country", help="Two-letter regulatory domain, e.g. GB, DE, US (Pi Wi-Fi stays off without it).")
@click.option("--timezone", help="e.g. Europe/Berlin")
@click.option(
    "--mqtt-password-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Installed as /etc/edgetally/mqtt-password (the unit's LoadCredential).",
)
@click.option(
    "--apt-package",
    "packages",
    multiple=True,
    default=("python3-venv",),
    show_default=True,
    help="rpi: apt packages cloud-init installs first (needs the network).",
)
def provision_command(
    target: str,
    boot: Path | None,
    out: Path | None,
    bundle: Path,
    hostname: str,
    user: str,
    ssh_keys: tuple[str, ...],
    wifi_ssid: str | None,
    wifi_password_file: Path | None,
    wifi_country: str | None,
    timezone: str | None,
    mqtt_password_file: Path | None,
    packages: tuple[str, ...],
) -> None:
    """Prepare first boot: cloud-init files on a Raspberry Pi boot partition, or a Jetson post-flash kit."""
    if wifi_ssid and wifi_password_file is None:
        raise click.BadParameter("--wifi-ssid needs --wifi-password-file", param_hint="--wifi-password-file")
    if wifi_ssid and target == "rpi" and not wifi_country:
        raise click.BadParameter("Raspberry Pi Wi-Fi needs --wifi-country (e.g. GB)", param_hint="--wifi-country")
    board = Board(
        hostname,
        user,
        read_ssh_keys(ssh_keys),
        wifi_ssid,
        _read_secret(wifi_password_file),
        wifi_country.upper() if wifi_country else None,
        timezone,
        _read_secret(mqtt_password_file),
    )
    if target == "rpi":
        if boot is None:
            raise click.BadParameter("required for --target rpi", param_hint="--boot")
        written = provision_pi(boot, bundle, board, packages)
    else:
        if out is None:
            raise click.BadParameter("required for --target jetson", param_hint="--out")
        written = provision_jetson(out, bundle, board)
    for path in written:
        click.echo(f"wrote {path}")


def _read_secret(path: Path | None) -> str | None:
    return path.read_text().rstrip("\r\n") if path is not None else None

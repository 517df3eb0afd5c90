"""`edge report`: interval counts from the device's history, as CSV, JSON or Markdown."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.option(
    "--state",
    "state",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder holding history-<device>.sqlite [default: $STATE_DIRECTORY, else ~/.local/state/edgetally].",
)
@click.option("--device", "devices", multiple=True, help="Only this device (repeatable; default: every device found).")
@click.option(
    "--from",
    "start",
    metavar="TIME",
    help="First bin: 2026-05-04, 2026-05-04T07:00, today, yesterday, -24h "
    "(local time unless an offset is given) [default: the start of the history].",
)
@click.option("--to", "end", metavar="TIME", help="End, not included (same forms) [default: now].")
@click.option(
    "--bin",
    "bin_",
    default="15m",
    show_default=True,
    help="Report bin: a multiple of the stored bins that divides an hour (1m .. 60m).",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "md"]), default="csv", show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write here instead of stdout."
)
def report_command(
    state: Path | None,
    devices: tuple[str, ...],
    start: str | None,
    end: str | None,
    bin_: str,
    fmt: str,
    out: Path | None,
) -> None:
    """Counts per bin x counter x class x direction (columns bin_start, bin_end, device, counter,
    class, direction, count, observed_s, ...; observed_s < the bin length means the camera was not
    seeing for part of it), and the peak hour of every counter (JSON and Markdown; CSV: on stderr)."""
    from edgetally.errors import ConfigError
    from edgetally.history.bins import parse_bin, parse_time
    from edgetally.history.report import FORMATS, build_report
    from edgetally.statedir import state_dir

    try:
        bin_s = parse_bin(bin_)
        lo = parse_time(start) if start else None
        hi = parse_time(end) if end else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    report = build_report(state or state_dir(), bin_s, lo, hi, devices)
    text = FORMATS[fmt](report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        click.echo(f"wrote {out}: {len(report.rows)} rows", err=True)
    else:
        click.echo(text, nl=False)
    if fmt == "csv":
        for peak in report.peaks:
            p = peak.to_json()
            click.echo(f"peak hour {p['device']}/{p['counter']}: {p['start']} .. {p['end']}: {p['count']}", err=True)

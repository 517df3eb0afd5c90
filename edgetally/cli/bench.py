"""`edge bench`: inference-only vs full-pipeline throughput on one video."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--model", required=True, type=click.Path(path_type=Path), help="Artifact directory.")
@click.option("--source", required=True, help="Video file to run (every frame is used).")
@click.option("--threads", type=int, default=2, show_default=True, help="Inference threads.")
@click.option("--max-frames", type=int, default=None, help="Use at most N frames.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench(model: Path, source: str, threads: int, max_frames: int | None, as_json: bool) -> None:
    """Measure inference-only FPS vs full pipeline FPS (decode+preprocess+infer+track+count)."""
    from edgetally.bench import format_report, run_bench

    report = run_bench(model, source, threads=threads, max_frames=max_frames)
    click.echo(json.dumps(report) if as_json else format_report(report))

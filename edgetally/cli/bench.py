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
@click.option(
    "--compare/--no-compare",
    default=True,
    show_default=True,
    help="Also time the artifact against the FP32 build it replaces (its reference/), interleaved, "
    "and say whether INT8/FP16 is faster on this board.",
)
def bench(model: Path, source: str, threads: int, max_frames: int | None, as_json: bool, compare: bool) -> None:
    """Measure inference-only FPS vs full pipeline FPS (decode+preprocess+infer+track+count)."""
    from edgetally.bench import format_report, run_bench

    report = run_bench(model, source, threads=threads, max_frames=max_frames)
    if compare:
        from edgetally.artifact import Artifact
        from edgetally.latency import compare_with_fp32

        report["vs_fp32"] = compare_with_fp32(Artifact.load(model), threads)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(format_report(report))
    if compare:
        click.echo(f"vs FP32      {report['vs_fp32']['statement']}")
        if "cpu" in report["vs_fp32"]:
            click.echo(f"cpu          {report['vs_fp32']['cpu']['summary']}")

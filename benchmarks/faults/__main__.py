"""python -m benchmarks.faults [--json OUT] [--only SUBSTRING]

Every fault of issue 14 injected for real (a decoder process that corrupts its heap, a tmpfs
filled to the brim, a garbage outbox, reloads, hostile MQTT messages, 1000 idle connections, a
tampered bundle, an image bomb, a bad config) -> what the runner did -> count events lost against
an undisturbed run of the same scene -> whether the runner stayed up. Target: every row "0 lost"
(or "n/a" where nothing is counted), the runner up where it should be. Needs the dev and convert
extras (the demo detector is packaged on the fly), mosquitto, and root for the tmpfs row (rows
that cannot run say why). A few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from benchmarks.faults.common import Row, edge_run, make_scene


def _rows(work: Path, only: str) -> list[Row]:
    from benchmarks.faults import capture_rows, count_rows, sink_rows, surface_rows

    scene = make_scene(work)
    code, summary, reference, err = edge_run(scene, work / "reference")
    if code != 0 or not reference:
        raise SystemExit(f"the undisturbed reference run failed (exit {code}):\n{err[-2000:]}")
    steps = [
        lambda: capture_rows.decoder_rows(scene, work, reference),
        lambda: capture_rows.corrupt_frame_rows(scene, work, reference),
        lambda: count_rows.reload_rows(scene, reference),
        lambda: [surface_rows.sighup_row(scene, work)],
        lambda: [count_rows.events_out_row(scene, work, reference)],
        lambda: [sink_rows.full_disk_row(work)],
        lambda: [sink_rows.garbage_outbox_row(work)],
        lambda: [sink_rows.hostile_commands_row(work)],
        lambda: [surface_rows.dashboard_row()],
        lambda: [surface_rows.health_row()],
        lambda: [surface_rows.install_row(work)],
        lambda: [surface_rows.image_bomb_row(work)],
        lambda: [surface_rows.bad_config_row(work)],
    ]
    rows: list[Row] = [
        Row("(reference: the scene, undisturbed)", f"{summary['frames']} frames", f"{len(reference)} events", "yes")
    ]
    for step in steps:
        for row in step():
            if only in row.fault:
                rows.append(row)
                print(f"  {row.fault}: {row.lost}", file=sys.stderr, flush=True)
    return rows


def render(rows: list[Row]) -> str:
    lines = ["| fault | outcome | events lost | runner up |", "|---|---|---|---|"]
    lines += [f"| {r.fault} | {r.outcome} | {r.lost} | {r.up} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.faults", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--only", default="", help="only rows whose fault contains this text")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # the faults log errors on purpose; the table says what happened
    with tempfile.TemporaryDirectory(prefix="edgetally-faults-") as tmp:
        rows = _rows(Path(tmp), args.only)
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

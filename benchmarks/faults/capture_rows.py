"""Decoder faults (item 1) and damaged frames (item 2), through the real runner in a subprocess."""

from __future__ import annotations

from pathlib import Path

from benchmarks.faults.common import Row, Scene, edge_run, exit_text, lost

# Runs `edge run` with the pipeline's source opened through one of tests/fault_sources.py's
# openers: in the runner's process (the old way) or as the decoder process of an IsolatedSource.
FAULTY_RUN = """
import json, sys
import fault_sources
import edgetally.build as build
from dataclasses import replace
from edgetally.capture import open_source
from edgetally.capture.isolated import IsolatedSource
from edgetally.cli import main
mode, opener, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def open_faulty(uri, opts):
    opts = replace(opts, **options)
    if opener == "none":
        return open_source(uri, opts)
    if mode == "isolated":
        return IsolatedSource(uri, opts, opener="fault_sources:" + opener)
    return getattr(fault_sources, opener)(uri, replace(opts, isolate=False))
build.open_source = open_faulty
sys.exit(main(sys.argv[4:]))
"""

DECODER_FAULTS = [
    (
        "decoder corrupts its heap at frame 40 (glibc abort), decoder in the runner's process",
        "inprocess",
        "heap_corruption",
        {},
    ),
    ("decoder corrupts its heap at frame 40 (glibc abort)", "isolated", "heap_corruption", {}),
    ("decoder segfaults at frame 40", "isolated", "segfault", {}),
    ("decoder hangs at frame 40", "isolated", "hang", {"decoder_timeout_s": 3.0}),
    ("decoder leaks 64 MB a frame from frame 5", "isolated", "leak", {"decoder_max_rss_mb": 500}),
]


def decoder_rows(scene: Scene, work: Path, reference: list[dict]) -> list[Row]:
    import json

    rows = []
    for i, (fault, mode, opener, options) in enumerate(DECODER_FAULTS):
        code, summary, events, err = edge_run(
            scene, work / f"decoder{i}", script=FAULTY_RUN, script_args=(mode, opener, json.dumps(options))
        )
        if summary is None:
            rows.append(
                Row(
                    fault,
                    f"runner {exit_text(code)}: no summary, events file without run_end",
                    lost(_first(reference, 40), events),
                    "no",
                )
            )
            continue
        frames = summary["frames"]
        why = next(
            (
                line.split(" frames: ", 1)[1].split("; ending")[0]
                for line in err.splitlines()
                if "the decoder process failed after" in line
            ),
            "?",
        )
        rows.append(
            Row(
                fault,
                f"file ends at frame {frames} ({why}), summary written, {exit_text(code)}",
                lost(_first(reference, frames), events),
                "yes" if code == 0 else "no",
            )
        )
    return rows


def corrupt_frame_rows(scene: Scene, work: Path, reference: list[dict]) -> list[Row]:
    """Three frames of the scene damaged (their MPEG-4 VOP headers zeroed): the old reader
    stopped at the first (emulated: max_bad_frames=0); now they are skipped and counted."""
    import json

    damaged = _damage(scene.video, work / "damaged.mp4", (60, 61, 100))
    rows = []
    for label, options in (
        ("stop at the first bad frame (the old reader)", {"max_bad_frames": 0}),
        ("skip bad frames (now)", {}),
    ):
        code, summary, events, _ = edge_run(
            scene,
            work / f"corrupt{len(rows)}",
            script=FAULTY_RUN,
            script_args=("isolated", "none", json.dumps(options)),
            source=damaged,
        )
        frames = summary["frames"] if summary else 0
        rows.append(
            Row(
                f"3 damaged frames in a video file: {label}",
                f"{frames} of {len(_frames(scene))} frames read, {exit_text(code)}",
                lost(reference, events),
                "yes" if code == 0 else "no",
            )
        )
    return rows


def _first(events: list[dict], frames: int) -> list[dict]:
    return [e for e in events if e["frame"] < frames]


def _frames(scene: Scene) -> range:
    import cv2

    cap = cv2.VideoCapture(str(scene.video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return range(n)


def _damage(video: Path, out: Path, frames: tuple[int, ...]) -> Path:
    data = bytearray(video.read_bytes())
    vops = [i for i in range(len(data) - 3) if data[i : i + 4] == b"\x00\x00\x01\xb6"]
    for k in frames:
        data[vops[k] : vops[k] + 300] = bytes(300)
    out.write_bytes(bytes(data))
    return out

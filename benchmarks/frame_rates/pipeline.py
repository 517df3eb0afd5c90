"""End-to-end pipeline runs: ``edge run`` itself on traffic_road.mp4 at each rate setting.

The counting tables replay cached detections; this measures the product: decoding (in its child
process), preprocessing, inference, decoding the head, flow, tracking and counting, through the
same command a board runs. Each setting is one ``edge run --config`` in a subprocess, with the
YOLOX-nano FP32 artifact on one inference thread, the video read as fast as it decodes:

- ``every frame``: the detector on all 480 frames (the full-rate baseline);
- ``detect N/s``: every frame read, the detector on N per second of video (``detect_fps``),
  flow in between;
- ``input N fps``: only every k-th frame exists (a camera or decoder that delivers fewer),
  written losslessly to an image folder whose timeline runs at source fps / k.

Reported per setting: frames, frames the detector saw, wall-clock frames per second (the
pipeline overlaps inference with the rest on a second core), CPU milliseconds per frame over
every process after start-up (what one core would need), and the counts on both hand-counted
lines (x=320 and x=280) against the hand count.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from benchmarks.frame_rates.clips import TRAFFIC_CLASSES, TRAFFIC_TRUTH, TRAFFIC_VIDEO
from benchmarks.frame_rates.detections import iter_frames

SOURCE_FPS = 23.976


@dataclass(frozen=True)
class Setting:
    label: str
    detect_fps: float | None = None  # None: the detector on every frame it is given
    input_every: int = 1  # keep every k-th frame of the video


def settings(
    input_rates: tuple[float, ...], detect_rates: tuple[float, ...], source_fps: float = SOURCE_FPS
) -> list[Setting]:
    """Every frame, then each detector rate (below the source's), then each every-k-th-frame rate."""
    out = [Setting("every frame")]
    out += [Setting(f"detect {r:g}/s", detect_fps=r) for r in detect_rates if r < source_fps]
    out += [Setting(f"input {r:g} fps", input_every=max(1, round(source_fps / r))) for r in input_rates]
    return out


def measure(
    artifact: Path,
    work: Path,
    input_rates: tuple[float, ...],
    detect_rates: tuple[float, ...],
    log: Callable[[str], None] = print,
) -> list[dict[str, object]]:
    truth = json.loads(TRAFFIC_TRUTH.read_text())["counts"]
    true_in, true_out = int(truth["in"]["total"]), int(truth["out"]["total"])  # the same on both lines
    rows = []
    for setting in settings(input_rates, detect_rates):
        log(f"pipeline: {setting.label}")
        source, fps = every_kth_source(setting.input_every, work)
        row = _run(setting, artifact, source, fps, work)
        row.update(true_in=true_in, true_out=true_out)
        rows.append(row)
    return rows


LINES = {"L": 320, "L280": 280}  # the hand count's line and its second line (traffic_road.counts.json)


def every_kth_source(
    every: int, work: Path, video: Path = TRAFFIC_VIDEO, source_fps: float = SOURCE_FPS
) -> tuple[Path, float | None]:
    """The video itself, or a folder of its every k-th frame (PNG: the same pixels the decoder gave)
    and the folder's frame rate."""
    if every == 1:
        return video, None
    stem = "traffic" if video == TRAFFIC_VIDEO else video.stem  # the traffic folder's name predates the others
    folder = work / f"{stem}_every{every}"
    if not (folder / ".complete").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(iter_frames(video)):
            if i % every == 0:
                cv2.imwrite(str(folder / f"{i:05d}.png"), image)
        (folder / ".complete").write_text("")
    return folder, source_fps / every


def _run(setting: Setting, artifact: Path, source: Path, fps: float | None, work: Path) -> dict[str, object]:
    config: dict[str, object] = {
        "model": str(artifact),
        "source": str(source),
        "threads": 1,
        "classes": list(TRAFFIC_CLASSES),
        "lines": [{"name": name, "points": [[x, 0], [x, 360]]} for name, x in LINES.items()],
    }
    if setting.detect_fps is not None:
        config["detect_fps"] = setting.detect_fps
    if fps is not None:
        config["capture"] = {"fps": fps}
    # Start-up (imports, model load, the decoder process) is charged to no frame: a one-frame run
    # of the same settings measures it.
    _, startup_cpu = edge_run({**config, "max_frames": 1}, work)
    summary, cpu = edge_run(config, work)
    frames = int(summary["frames"])
    counted = {}
    for name in LINES:
        by_class = summary["counts"].get(name, {})  # class -> direction -> n
        counted[name] = {d: sum(int(c.get(d, 0)) for c in by_class.values()) for d in ("in", "out")}
    return {
        "setting": setting.label,
        "frames": frames,
        "detected_frames": int(summary.get("detected_frames", frames)),
        "pipeline_fps": float(summary["fps"]),
        "cpu_ms_per_frame": 1000.0 * (cpu - startup_cpu) / max(frames - 1, 1),
        "lines": counted,  # line -> direction -> counted (every class)
    }


def edge_run(config: dict[str, object], work: Path) -> tuple[dict, float]:
    """One ``edge run --config``: its summary and the CPU seconds of it and its children."""
    cfg = work / "pipeline-config.yaml"
    cfg.write_text(json.dumps(config))  # JSON is YAML
    summary = work / "pipeline-summary.json"
    summary.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "edgetally", "run", "--config", str(cfg), "--summary-json", str(summary)],
        capture_output=True,
        text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"edge run failed with {cfg}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(summary.read_text()), cpu


def table(rows: list[dict[str, object]]) -> str:
    out = [
        "| setting | frames | detected | pipeline fps (wall) | CPU ms/frame, all processes | "
        "in / out x=320; x=280 (true) | abs % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines: dict = r["lines"]  # type: ignore[assignment]
        true = (r["true_in"], r["true_out"])
        error = sum(abs(c["in"] - true[0]) + abs(c["out"] - true[1]) for c in lines.values())
        pct = 100.0 * error / (len(lines) * (true[0] + true[1]))  # type: ignore[operator]
        got = "; ".join(f"{c['in']} / {c['out']}" for c in lines.values())
        out.append(
            f"| {r['setting']} | {r['frames']} | {r['detected_frames']} | {r['pipeline_fps']:.0f} | "
            f"{r['cpu_ms_per_frame']:.1f} | {got} ({true[0]} / {true[1]}) | {pct:.1f} |"
        )
    return "\n".join(out)

"""Runner memory on a long video: peak RSS and growth between early and late frames.

    python benchmarks/memory_bench.py --model ARTIFACT [--video FILE] [--frames 10000] [--json]

Builds a long video by repeating FILE (default ../shared/data/videos/traffic_road.mp4) up to
--frames frames, runs `edge run` on it in a subprocess, samples /proc/PID/status once a second and
reports VmHWM (peak RSS), the RSS after the first tenth of the run and at the end. The target for
issue 2: peak <= 300 MB, no growth over 10,000 frames.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]


def make_long_video(src: Path, frames: int, out: Path) -> Path:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    clip = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        clip.append(frame)
    cap.release()
    h, w = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(frames):
        writer.write(clip[i % len(clip)])
    writer.release()
    return out


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(model: Path, video: Path, line: str) -> dict[str, object]:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from edgetally.cli import main; sys.exit(main(sys.argv[1:]))",
        "run",
        "--model",
        str(model),
        "--source",
        str(video),
        "--line",
        line,
    ]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples: list[tuple[float, int]] = []
    peak = 0
    while proc.poll() is None:
        rss = _status_kb(proc.pid, "VmRSS")
        hwm = _status_kb(proc.pid, "VmHWM")
        if rss is not None:
            samples.append((time.monotonic() - start, rss))
            peak = max(peak, hwm or rss)
        time.sleep(1.0)
    out, _ = proc.communicate()
    summary = json.loads(out.strip().splitlines()[-1])
    tenth = samples[max(1, len(samples) // 10)][1] if samples else 0
    return {
        "frames": summary["frames"],
        "seconds": summary["seconds"],
        "fps": summary["fps"],
        "peak_rss_mb": round(peak / 1024, 1),
        "rss_after_first_tenth_mb": round(tenth / 1024, 1),
        "rss_at_end_mb": round(samples[-1][1] / 1024, 1) if samples else 0.0,
        "growth_mb": round((samples[-1][1] - tenth) / 1024, 1) if samples else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="artifact directory")
    parser.add_argument("--video", type=Path, default=REPO.parent / "shared/data/videos/traffic_road.mp4")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--line", default="L=320,0,320,360")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = make_long_video(args.video, args.frames, Path(tmp) / "long.mp4")
        result = measure(args.model, video, args.line)
    print(json.dumps(result) if args.json else "\n".join(f"{k:28s} {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What decoding in a child process costs: FPS, memory and where the decode CPU goes.

    python -m benchmarks.capture_isolation [--model ARTIFACT] [--video FILE] [--frames 1440] [--repeats 2]

For each repeat, interleaved, in fresh subprocesses: (1) decode only (iterate the source, no
model) and (2) the whole pipeline (`run_counting`: YOLOX-nano FP32 by default, line x=320), each
with the decoder in-process (CaptureOptions(isolate=False)) and isolated (the default). Reports
fps, the runner's and the decoder process's peak RSS (VmHWM, sampled), the CPU
seconds of the runner and of its children, and the CPU seconds of the runner's frame-reader
thread (decode + preprocess in-process; receive + copy + preprocess isolated): decode moves off
the runner, whose threads are left for inference and tracking.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.memory_bench import make_long_video

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

PROBE = r"""
import json, os, resource, sys, threading, time
mode, what, video, model = sys.argv[1:5]
from edgetally.capture import CaptureOptions, open_source

def status_kb(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0

decoder_hwm = [0]
def watch_children():  # the decoder process's peak RSS (ru_maxrss would count the fork's copy of us)
    while True:
        for task in os.listdir("/proc/self/task"):
            try:
                kids = open(f"/proc/self/task/{task}/children").read().split()
            except OSError:
                continue
            for pid in kids:
                decoder_hwm[0] = max(decoder_hwm[0], status_kb(pid, "VmHWM"))
        time.sleep(0.2)
threading.Thread(target=watch_children, daemon=True).start()

def thread_cpu(name):
    for t in threading.enumerate():
        if t.name == name and t.native_id:
            try:
                f = open(f"/proc/self/task/{t.native_id}/stat").read().rsplit(")", 1)[1].split()
                return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
            except OSError:
                return None
    return None

opts = CaptureOptions(isolate=(mode == "isolated"))
out = {}
if what == "decode":
    t0 = time.perf_counter()
    with open_source(video, opts) as src:
        n = sum(1 for _ in src)
    out = {"frames": n, "fps": n / (time.perf_counter() - t0)}
else:
    from edgetally.config.models import RunSettings
    from edgetally.hooks import Hook
    from edgetally.runner import run_counting
    reader_cpu = [0.0]
    class ReaderCpu(Hook):  # samples the frame-reader thread's CPU time while it lives
        def frame(self, result):
            if result.frames % 25 == 0:
                reader_cpu[0] = thread_cpu("frame-reader") or reader_cpu[0]
    settings = RunSettings.model_validate({"model": model, "source": video, "capture": {"isolate": mode == "isolated"},
                                           "lines": [{"name": "L", "points": "320,0,320,360"}]})
    summary = run_counting(settings, hooks=[ReaderCpu()])
    out = {"frames": summary["frames"], "fps": summary["fps"], "reader_thread_cpu_s": round(reader_cpu[0], 2)}
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
out.update(runner_peak_rss_mb=round(status_kb("self", "VmHWM") / 1024, 1), decoder_peak_rss_mb=round(decoder_hwm[0] / 1024, 1),
           runner_cpu_s=round(me.ru_utime + me.ru_stime, 2), decoder_cpu_s=round(kids.ru_utime + kids.ru_stime, 2))
print(json.dumps(out))
"""


def probe(mode: str, what: str, video: Path, model: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, mode, what, str(video), str(model)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def default_model(tmp: Path) -> Path:
    from edgetally.cli import main

    out = tmp / "yolox_nano_fp32"
    rc = main(
        [
            "convert",
            str(SHARED / "models/yolox_nano.onnx"),
            "--precision",
            "fp32",
            "--decoder",
            "yolox",
            "--input-size",
            "416",
            "--labels",
            "coco80",
            "--out",
            str(out),
        ]
    )
    if rc != 0:
        raise SystemExit("edge convert failed on the shared YOLOX-nano")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="artifact directory (default: the shared YOLOX-nano, FP32)")
    parser.add_argument("--video", type=Path, default=SHARED / "videos/traffic_road.mp4")
    parser.add_argument("--frames", type=int, default=1440)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model = args.model or default_model(tmp)
        video = make_long_video(args.video, args.frames, tmp / "long.mp4")
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.repeats):
            for what in ("decode", "pipeline"):
                for mode in ("in-process", "isolated"):  # interleaved: load changes hit both alike
                    runs.setdefault((what, mode), []).append(probe(mode, what, video, model))
    print(f"{'':22s} {'mode':11s} " + " ".join(f"{k:>20s}" for k in _keys(runs)))
    for (what, mode), results in runs.items():
        medians = {k: statistics.median(r[k] for r in results if k in r) for k in _keys(runs) if k in results[0]}
        print(f"{what:22s} {mode:11s} " + " ".join(f"{medians.get(k, float('nan')):20.2f}" for k in _keys(runs)))
    return 0


def _keys(runs: dict[tuple[str, str], list[dict[str, float]]]) -> list[str]:
    keys: list[str] = []
    for results in runs.values():
        keys += [k for k in results[0] if k not in keys and k != "frames"]
    return keys


if __name__ == "__main__":
    raise SystemExit(main())

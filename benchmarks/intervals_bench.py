"""What the interval sink costs the frame loop.

    .venv/bin/python -m benchmarks.intervals_bench [--frames 20000] [--events 300]

Per frame: ``IntervalSink.frame()`` with 20 visible tracks and a four-arm junction (observed time,
bin closing, movement liveness). Per count: ``event()`` with ``sync: full`` (an fsync per count, as
the outbox does) and ``sync: normal``. Times are wall-clock means on this machine's disk.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from edgetally.config.models import IntervalSettings, MovementSettings
from edgetally.hooks import CounterInfo, RunContext
from edgetally.sinks.intervals import IntervalSink
from edgetally.structures import CountEvent, CountTotals

ARMS = ["north", "east", "south", "west"]


def _sink(tmp: Path, sync: str, clock: list[float]) -> IntervalSink:
    settings = IntervalSettings(bin="1m", history=tmp / f"history-{sync}.sqlite", sync=sync)  # type: ignore[arg-type]
    sink = IntervalSink(
        settings, [MovementSettings(name="j", approaches=ARMS)], device_id="bench", clock=lambda: clock[0], timer_s=None
    )
    sink.open(RunContext("bench", [CounterInfo(a, "line", ("in", "out")) for a in ARMS], ["car"], CountTotals()))
    return sink


def per_frame(tmp: Path, frames: int) -> float:
    clock = [1_800_000_000.0]
    sink = _sink(tmp, "normal", clock)
    ids = list(range(20))
    t0 = time.perf_counter()
    for i in range(frames):
        clock[0] += 1 / 15
        sink.frame(ids, i / 15)
    elapsed = time.perf_counter() - t0
    sink.close()
    return elapsed / frames * 1e6


def per_event(tmp: Path, events: int, sync: str) -> float:
    clock = [1_800_000_000.0]
    sink = _sink(tmp, sync, clock)
    t0 = time.perf_counter()
    for i in range(events):
        clock[0] += 0.5
        sink.event(CountEvent(ARMS[i % 4], "line", "car", "in", i, i, i * 0.5), i)
    elapsed = time.perf_counter() - t0
    sink.close()
    return elapsed / events * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"frame(): {per_frame(folder, args.frames):.1f} us per frame (20 tracks, 4-arm junction, 1 min bins)")
        for sync in ("full", "normal"):
            print(f"event() sync={sync}: {per_event(folder, args.events, sync):.2f} ms per count")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

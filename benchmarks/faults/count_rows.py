"""Reload (item 3) and --events-out across restarts (item 4), on the real pipeline."""

from __future__ import annotations

import threading
from pathlib import Path

from benchmarks.faults.common import Row, Scene, edge_run, lost


def reload_rows(scene: Scene, reference: list[dict]) -> list[Row]:
    """Reload every 0.3 s (what SIGHUP and cmd/reload queue) on the pipeline as it is, and with
    counting.carry_over called from its reload (the wiring the lead is adding)."""
    from edgetally.counting import carry_over
    from edgetally.pipeline import Pipeline

    class Wired(Pipeline):
        def _reload(self) -> None:
            old = self.counters
            super()._reload()
            if self.counters is not old:
                carry_over(old, self.counters)

    rows = []
    for label, cls in (("pipeline as it is", Pipeline), ("with counting.carry_over wired in", Wired)):
        events, reloads = _run_reloading(cls, scene)
        rows.append(
            Row(
                f"reload every 0.3 s, geometry unchanged ({label})",
                f"{reloads} reloads, run completes",
                lost(reference, events),
                "yes",
            )
        )
    return rows


def _run_reloading(cls: type, scene: Scene) -> tuple[list[dict], int]:
    from edgetally.config.models import RunSettings

    settings = RunSettings.model_validate(
        {
            "model": scene.artifact,
            "source": str(scene.video),
            "lines": [{"name": "L", "points": scene.line.split("=")[1]}],
        }
    )
    recorder = _Recorder()
    pipeline = cls(settings, [recorder])
    pipeline.reload_settings = lambda: settings
    done = threading.Event()
    reloads = 0

    def reload_often() -> None:
        nonlocal reloads
        while not done.wait(0.3):
            pipeline.request({"cmd": "reload"})
            reloads += 1

    thread = threading.Thread(target=reload_often, daemon=True)
    thread.start()
    try:
        pipeline.run()
    finally:
        done.set()
        thread.join()
    return recorder.events, reloads


class _Recorder:
    """A sink that keeps the count events it is given."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def open(self, context: object) -> None:
        pass

    def event(self, event, cumulative: int) -> None:
        self.events.append(event.to_json())

    def stats(self, stats: object) -> None:
        pass

    def close(self, final_state: str = "stopped") -> None:
        pass


def events_out_row(scene: Scene, work: Path, reference: list[dict]) -> Row:
    from edgetally.sinks.jsonl import read_events

    out = work / "restarts"
    for _ in range(3):  # start, restart, restart: the same --events-out file
        edge_run(scene, out)
    kept = read_events(out / "events.jsonl")
    runs = (out / "events.jsonl").read_text().count('"run_start"')
    return Row(
        "--events-out across 3 starts",
        f"{runs} run_start markers, every run's events kept",
        lost(reference * 3, kept),
        "yes",
    )

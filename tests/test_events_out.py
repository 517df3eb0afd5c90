"""--events-out appends: every run adds a run_start marker, its events and a run_end marker; the
history of earlier runs (restarts, upgrades, watchdog restarts) is kept."""

from __future__ import annotations

import json
from pathlib import Path

from edgetally.cli import main
from edgetally.hooks import CounterInfo, RunContext
from edgetally.sinks.jsonl import JsonlEventSink, is_marker, read_events
from edgetally.structures import CountEvent, CountTotals


def _ctx() -> RunContext:
    return RunContext("cam1", [CounterInfo("L", "line", ("in", "out"))], ["car"], CountTotals())


def _event(track: int) -> CountEvent:
    return CountEvent("L", "line", "car", "in", track, 10 * track, track / 10, 0.9)


def test_sink_appends_with_markers_and_survives_a_killed_run(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonlEventSink(path)
    sink.open(_ctx())
    sink.event(_event(1), 1)
    sink.close("stopped")
    with open(path, "a", encoding="utf-8") as fh:  # a run killed in the middle of writing a line
        fh.write('{"run_start": "x"}\n{"counter": "L", "kind": "li')
    sink = JsonlEventSink(path)
    sink.open(_ctx())
    sink.event(_event(2), 2)
    sink.close("error")
    text = path.read_text().splitlines()
    assert text[4] == '{"counter": "L", "kind": "li'  # the partial line stays alone on its line
    lines = [json.loads(line) for i, line in enumerate(text) if i != 4]
    assert [next(iter(o)) if is_marker(o) else o["track_id"] for o in lines] == [
        "run_start",
        1,
        "run_end",
        "run_start",
        "run_start",
        2,
        "run_end",
    ]
    assert lines[0]["device_id"] == "cam1" and lines[0]["counters"] == ["L"] and lines[-1]["state"] == "error"
    assert [e["track_id"] for e in read_events(path)] == [1, 2]


def test_two_runs_keep_both_histories(demo_fp32_artifact: Path, demo_video: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    args = [
        "run",
        "--model",
        str(demo_fp32_artifact),
        "--source",
        str(demo_video),
        "--line",
        "L=320,0,320,360",
        "--events-out",
        str(events),
        "--summary-json",
        str(tmp_path / "s.json"),
    ]
    assert main(args) == 0
    first = read_events(events)
    assert first, "the demo scene should produce crossings"
    assert main(args) == 0
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert sum("run_start" in o for o in lines) == 2 and sum("run_end" in o for o in lines) == 2
    assert read_events(events) == first + first  # same video twice: the first run's events are still there

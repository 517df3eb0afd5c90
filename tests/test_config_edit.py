"""Geometry edits (cmd/config): the command's shape, the device-side checks (validate-config's validator,
the frame, the model's labels), the atomic write with the previous file kept, and refusals that change
nothing. The dashboard side: its state for config/interval/result topics and the history view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetally.config import load_config
from edgetally.config.edit import apply_edit, restore_previous
from edgetally.dashboard.history import history_view
from edgetally.dashboard.state import DashboardState
from edgetally.sinks.commands import parse_command

CONFIG = """# counting on the north camera
model: art
source: cam.mp4
lines:
  - name: north
    points: [[10, 10], [600, 10]]
  - name: south
    points: [[10, 300], [600, 300]]
movements:
  - name: crossing
    approaches: [north, south]
"""
LABELS = ["car", "truck", "bus", "bicycle"]
FRAME = (640, 360)


@pytest.fixture()
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return path


def test_a_valid_edit_is_written_atomically_keeping_the_previous_file(cfg: Path) -> None:
    change = {
        "lines": [{"name": "north", "points": [[20, 15], [620, 15]]}, {"name": "south", "points": "5,280,630,280"}],
        "zones": [{"name": "bay", "polygon": [[100, 100], [200, 100], [200, 200]]}],
        "classes": ["car", "bus"],
    }
    result = apply_edit(cfg, change, FRAME, LABELS)
    assert result.ok and result.errors == [] and result.previous == cfg.with_name("run.yaml.prev")
    assert result.previous.read_text() == CONFIG  # comments and all
    settings = load_config(cfg)
    assert [ln.points for ln in settings.lines] == [[(20.0, 15.0), (620.0, 15.0)], [(5.0, 280.0), (630.0, 280.0)]]
    assert settings.zones[0].name == "bay" and settings.classes == ["car", "bus"]
    assert settings.movements[0].approaches == ["north", "south"]  # untouched keys stay
    assert not list(cfg.parent.glob(".run.yaml.*"))  # no temporary file left behind
    assert apply_edit(cfg, {"classes": []}, FRAME, LABELS).ok and load_config(cfg).classes is None  # [] = every class


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {
                "lines": [
                    {"name": "north", "points": [[10, 10], [700, 20]]},
                    {"name": "south", "points": [[10, 300], [600, 300]]},
                ]
            },
            ":7: lines.0.points.1: point (700, 20) of 'north' is outside the 640x360 frame",
        ),
        (
            {"zones": [{"name": "z", "polygon": [[0, 0], [10, -1], [5, 5]]}]},
            "zones.0.polygon.1: point (10, -1) of 'z' is outside",
        ),
        (
            {"classes": ["car", "tractor"]},
            "classes.1: unknown class 'tractor'; the model knows: car, truck, bus, bicycle",
        ),
        (
            {
                "lines": [
                    {"name": "N", "points": [[10, 10], [600, 10]]},
                    {"name": "south", "points": [[10, 300], [600, 300]]},
                ]
            },
            "movements.0.approaches.0: unknown approach 'north'",
        ),
        (
            {"lines": [{"name": "north", "points": [[10, 10]]}]},
            "lines.0.points: Value error, expected at least 2 points",
        ),
        (
            {"lines": [{"name": "north", "points": [[1, 1], [2, 2]], "colour": "red"}]},
            "lines.0.colour: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_edits_are_refused_and_change_nothing(cfg: Path, change: dict, message: str) -> None:
    before = cfg.read_bytes()
    result = apply_edit(cfg, change, FRAME, LABELS)
    assert not result.ok and any(message in e for e in result.errors), result.errors
    assert all(e.startswith(f"{cfg} (proposed)") for e in result.errors)
    assert cfg.read_bytes() == before and not cfg.with_name("run.yaml.prev").exists()
    assert not list(cfg.parent.glob(".run.yaml.*"))


def test_no_frame_yet_means_no_geometry_change(cfg: Path) -> None:
    result = apply_edit(cfg, {"classes": ["car"]}, None, LABELS)
    assert not result.ok and "no camera frame seen yet" in result.errors[0]


def test_restore_previous(cfg: Path) -> None:
    assert apply_edit(cfg, {"classes": ["car"]}, FRAME, LABELS).ok
    assert restore_previous(cfg) and cfg.read_text() == CONFIG


@pytest.mark.parametrize(
    "payload, command, error",
    [
        (b'{"classes": ["car"], "id": "r1"}', {"cmd": "config", "classes": ["car"]}, None),
        (b'{"lines": [], "zones": []}', {"cmd": "config", "lines": [], "zones": []}, None),
        (b"{}", None, "expected at least one of lines, zones, classes"),
        (b'{"model": "x"}', None, "model: Extra inputs are not permitted"),
        (b'{"lines": "north"}', None, "lines: Input should be a valid list"),
        (b"[1]", None, "must be a JSON object"),
        (b'{"classes": ["' + b"x" * 70000 + b'"]}', None, "payload too large"),
    ],
)
def test_config_command_shape(payload: bytes, command: dict | None, error: str | None) -> None:
    parsed = parse_command("config", payload, known_counters=[])
    assert parsed.command == command
    assert (parsed.error is None) if error is None else (error in (parsed.error or "")), parsed.error


def test_dashboard_state_keeps_config_intervals_and_answers() -> None:
    state = DashboardState("edgetally")
    config = {"lines": [], "zones": [], "frame": [640, 360], "labels": LABELS}
    row = {
        "start_ts": 60,
        "end_ts": 120,
        "bin_s": 60,
        "counter": "L",
        "kind": "line",
        "class": "car",
        "direction": "in",
        "count": 3,
        "observed_s": 60.0,
        "frames": 900,
    }
    assert state.handle("edgetally/cam/config", json.dumps(config).encode())
    assert state.handle("edgetally/cam/intervals", json.dumps(row).encode())
    assert state.handle(
        "edgetally/cam/interval/L/car/in", json.dumps(row).encode()
    )  # the retained copy: same bin, once
    assert state.handle("edgetally/cam/cmd/result", b'{"cmd": "config", "ok": true, "id": "abc"}')
    assert not state.handle("edgetally/cam/cmd/config", b'{"classes": []}')  # the dashboard's own request
    assert not state.handle("edgetally/cam/intervals", b'{"count": 1}')  # not a row
    assert state.device_config("cam") == config and state.interval_rows("cam") == [row]
    assert state.result("cam", "abc") == {"cmd": "config", "ok": True, "id": "abc"} and state.result("cam", "x") is None


def test_history_view_bars_and_od_matrix() -> None:
    def row(start: int, counter: str, kind: str, cls: str, d: str, n: int, observed: float = 60.0) -> dict:
        return {
            "start_ts": start,
            "end_ts": start + 60,
            "bin_s": 60,
            "counter": counter,
            "kind": kind,
            "class": cls,
            "direction": d,
            "count": n,
            "observed_s": observed,
            "frames": 10,
        }

    rows = [
        row(0, "L", "line", "car", "in", 2),
        row(0, "L", "line", "bus", "out", 1),
        row(60, "L", "line", "car", "in", 4, 20.0),
        row(0, "Z", "zone", "car", "entered", 3),
        row(0, "Z", "zone", "car", "exited", 3),
        row(0, "X", "movement", "car", "a->b", 2),
        row(60, "X", "movement", "bus", "a->b", 1),
        row(60, "X", "movement", "car", "b->?", 1),
        row(60, "X", "movement", "car", "?->a", 1),
    ]
    view = history_view(rows)
    assert [b["start"] for b in view["bins"]] == [0, 60] and view["bins"][1]["observed_s"] == 20.0
    assert [b["total"] for b in view["counters"]["L"]["bins"]] == [3, 4]
    assert [b["total"] for b in view["counters"]["Z"]["bins"]] == [3, 0]  # entries only
    od = view["od"]["X"]
    assert od["origins"] == ["a", "b", "?"] and od["destinations"] == ["a", "b", "?"]
    assert od["cells"] == {"a": {"b": 3}, "b": {"?": 1}, "?": {"a": 1}} and od["total"] == 5
    assert history_view(rows, classes={"bus"})["od"]["X"]["cells"] == {"a": {"b": 1}}

"""Config loading: valid files load; every error names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetally.config import load_config, validate_file
from edgetally.errors import ConfigError

GOOD = """\
model: artifacts/yolox
source: road.mp4
threads: 1
classes: car,truck
lines:
  - name: L
    points: [[320, 0], [320, 360]]
  - name: M
    points: 10,20,30,40
    anchor: center
zones:
  - name: Z
    polygon: [[0, 0], [100, 0], [100, 100]]
tracker:
  min_hits: 2
outputs:
  summary: out/summary.json
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_valid_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_config(_write(tmp_path, GOOD))
    assert settings.model == tmp_path / "artifacts/yolox"
    assert settings.classes == ["car", "truck"]
    assert settings.lines[0].points == [(320.0, 0.0), (320.0, 360.0)]
    assert settings.lines[1].points == [(10.0, 20.0), (30.0, 40.0)]
    assert settings.lines[1].anchor == "center"
    assert len(settings.zones[0].polygon) == 3
    assert settings.tracker == {"min_hits": 2}


def test_cli_overrides_win_over_the_file(tmp_path: Path) -> None:
    settings = load_config(_write(tmp_path, GOOD), {"threads": 4, "source": "other.mp4"})
    assert (settings.threads, settings.source) == (4, "other.mp4")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: a\nsource: b\nthreads: two\n", ["cfg.yaml:3: threads: "]),
        ("model: a\nsource: b\nthreds: 2\n", ["cfg.yaml:3: threds: Extra inputs are not permitted"]),
        ("model: a\n", ["cfg.yaml:1: source: Field required"]),
        (
            "model: a\nsource: b\nlines:\n  - name: L\n    points: [[1, 2], [1, 2]]\n  - name: M\n    points: 1,2,3\n",
            [
                "cfg.yaml:5: lines.0.points: ",
                "the line's two points are the same",
                "cfg.yaml:7: lines.1.points: ",
                "expected at least 2 points",
            ],
        ),
        (
            "model: a\nsource: b\nzones:\n  - name: Z\n    polygon: [[0, 0], [1, 1]]\n",
            ["cfg.yaml:5: zones.0.polygon: "],
        ),
        (
            "model: a\nsource: b\nlines:\n  - {name: A, points: '0,0,1,1'}\n  - {name: A, points: '0,0,2,2'}\n",
            ["counter names must be unique; repeated: A"],
        ),
        ("model: a\nsource: b\n  threads: 2\n", ["cfg.yaml:3: YAML syntax error"]),
        ("- just\n- a list\n", ["cfg.yaml:1: (top level): expected a mapping"]),
        ("model: a\nsource: b\nscore_threshold: 1.5\n", ["cfg.yaml:3: score_threshold: "]),
    ],
)
def test_every_error_names_file_line_and_key(tmp_path: Path, text: str, expected: list[str]) -> None:
    errors = "\n".join(validate_file(_write(tmp_path, text)))
    for fragment in expected:
        assert fragment in errors
    with pytest.raises(ConfigError):
        load_config(tmp_path / "cfg.yaml")


def test_all_errors_are_reported_not_just_the_first(tmp_path: Path) -> None:
    errors = validate_file(_write(tmp_path, "model: a\nsource: b\nthreads: 0\nmax_frames: -1\nbogus: 1\n"))
    assert [e.split(": ")[1] for e in errors] == ["threads", "max_frames", "bogus"]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    assert "cannot read config" in validate_file(tmp_path / "nope.yaml")[0]

"""The README as a new user meets it: documented outputs are what the program prints, the
"own model" block runs as written from the clone, and the pictures it shows exist."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import readme_outputs

README = (REPO / "README.md").read_text()
DEMO_COMMAND = "edge demo --no-dashboard --seconds 20"  # its block is checked in test_demo_command.py


def test_every_documented_output_has_a_check() -> None:
    assert set(readme_outputs.documented(README)) == {DEMO_COMMAND, "edge profiles"}


def test_profiles_block_is_what_edge_profiles_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from edgetally.cli import main

    assert main(["profiles"]) == 0
    printed = readme_outputs.normalise(capsys.readouterr().out)
    assert printed.splitlines()[0].split() == [
        "profile",
        "runtime",
        "format",
        "precision",
        "input",
        "threads",
        "int8_pays",
        "board",
    ]
    assert printed == readme_outputs.documented(README)["edge profiles"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\nline 'L'\n  a  \ndemo finished in 71.8 s (counting 7.8 s)\n", "line 'L'\n  a\n"),  # wall times dropped
        ("x\n\n", "x\n"),
    ],
)
def test_normalise_table(text: str, expected: str) -> None:
    assert readme_outputs.normalise(text) == expected


def test_blocks_are_rewritten_in_place_with_their_indentation() -> None:
    text = "a\n   <!-- output of: edge x -->\n   ```text\n   old\n   ```\nb\n"
    assert readme_outputs.documented(text) == {"edge x": "old\n"}
    new = readme_outputs.replace_block(text, "edge x", "one\ntwo\n")
    assert new == "a\n   <!-- output of: edge x -->\n   ```text\n   one\n   two\n   ```\nb\n"


def test_pictures_shown_at_the_top_exist_and_are_small() -> None:
    pictures = re.findall(r'<img src="(docs/[^"]+\.png)"', README.split("## Quick start")[0])
    assert len(pictures) == 2
    for picture in pictures:
        path = REPO / picture
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size < 300_000, picture


def own_model_block() -> list[list[str]]:
    """The bash block marked 'runs as written' in the README, one argv per command."""
    block = README.split("<!-- runs as written: tests/test_readme.py -->\n```bash\n", 1)[1].split("```", 1)[0]
    commands = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line.split("  #")[0]) for line in commands if line.strip()]


def test_own_model_block_runs_as_written_from_the_clone(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="edge convert needs the convert extra")
    os.symlink(REPO / "models", tmp_path / "models")  # the block runs in the clone's root
    for argv in own_model_block():
        assert argv[0] == "edge"
        proc = subprocess.run(
            [sys.executable, "-m", "edgetally", *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"{shlex.join(argv)}:\n{proc.stderr[-2000:]}"
    truth = json.loads((tmp_path / "scene.truth.json").read_text())["total"]
    counts = json.loads((tmp_path / "out/summary.json").read_text())["counts"]["L"]
    counted = {d: sum(per[d] for per in counts.values()) for d in ("in", "out")}
    total = truth["in"] + truth["out"]
    assert total >= 15 and abs(sum(counted.values()) - total) <= 0.1 * total, (counted, truth)
    assert (tmp_path / "frame.jpg").stat().st_size > 10_000

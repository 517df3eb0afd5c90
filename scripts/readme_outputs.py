"""The README's documented outputs, made by the program itself so they cannot drift.

A documented output is a ```text block right after a marker naming the command that prints it:

    <!-- output of: edge profiles -->

``python scripts/readme_outputs.py --check`` runs every marked command (from the repository root,
in a scratch work directory) and exits 1 when a block differs; ``--write`` rewrites the blocks.
tests/test_readme.py checks each block against a real run too (the demo's inside its end-to-end test).
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)<!-- output of: (?P<command>.+?) -->\n(?P=indent)```text\n(?P<body>.*?)^(?P=indent)```\n",
    re.S | re.M,
)
# Lines whose numbers change from run to run (wall times) are not documented.
VOLATILE = re.compile(r"^demo finished in ")


def documented(text: str) -> dict[str, str]:
    """command -> the documented output block under its marker (its indentation, in a list item, removed)."""
    return {m["command"]: _indent(m["body"], m["indent"], remove=True) for m in BLOCK.finditer(text)}


def _indent(body: str, indent: str, remove: bool = False) -> str:
    if remove:
        return "".join(line.removeprefix(indent) for line in body.splitlines(True))
    return "".join(indent + line for line in body.splitlines(True))


def normalise(output: str) -> str:
    """What a documented block holds: the command's stdout without volatile lines, no blank lines
    at either end, one trailing newline."""
    lines = [line.rstrip() for line in output.splitlines() if not VOLATILE.match(line)]
    return "\n".join(lines).strip("\n") + "\n"


def run_documented(command: str, work: Path) -> str:
    """Run a documented `edge ...` command with this interpreter; its normalised stdout."""
    args = shlex.split(command)
    if args[0] != "edge":
        raise ValueError(f"documented command must start with 'edge': {command!r}")
    if args[1] == "demo":
        args += ["--work", str(work / "demo")]
    proc = subprocess.run(
        [sys.executable, "-m", "edgetally", *args[1:]], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{command} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return normalise(proc.stdout)


def replace_block(text: str, command: str, body: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if m["command"] != command:
            return m[0]
        i = m["indent"]
        return f"{i}<!-- output of: {command} -->\n{i}```text\n{_indent(body, i)}{i}```\n"

    return BLOCK.sub(sub, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="Rewrite the blocks (default: only check).")
    args = parser.parse_args(argv)
    text = README.read_text()
    drift = 0
    with tempfile.TemporaryDirectory(prefix="readme-outputs-") as tmp:
        for command, body in documented(text).items():
            actual = run_documented(command, Path(tmp))
            if actual == body:
                print(f"ok: {command}")
                continue
            drift += 1
            print(f"DIFFERS: {command}")
            sys.stdout.writelines(
                difflib.unified_diff(body.splitlines(True), actual.splitlines(True), "README.md", "program")
            )
            text = replace_block(text, command, actual)
    if drift and args.write:
        README.write_text(text)
        print(f"rewrote {drift} block(s) in {README}")
        return 0
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())

"""The runner (and `edge label`, which may run on a board over its recent frames) must not pull the converter
stack (torch, tensorflow, nncf, onnx, converters, edge train's fine-tuning) onto a board."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = (
    "torch",
    "tensorflow",
    "nncf",
    "onnx",
    "openvino",
    "tflite_runtime",
    "ai_edge_litert",
    "onnxconverter_common",
    "litert_torch",
    "onnx2torch",
    "edgetally.converters",
    "edgetally.train",
)

PROBE = """
import json, sys
import edgetally, edgetally.cli, edgetally.cli.run, edgetally.pipeline, edgetally.runner, edgetally.bench, edgetally.capture
import edgetally.tracking, edgetally.counting
import edgetally.postprocess, edgetally.sinks.jsonl, edgetally.runtimes, edgetally.runtimes.onnxruntime, edgetally.latency
import edgetally.runtimes.tensorrt, edgetally.cli.bench
import edgetally.cli.label, edgetally.label.session, edgetally.label.server, edgetally.label.replay
{extra}
roots = sorted({{m.split('.')[0] for m in sys.modules}}
               | {{m for m in sys.modules if m.startswith(('edgetally.converters', 'edgetally.train'))}})
print(json.dumps(roots))
"""


def _loaded_roots(extra: str = "") -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(extra=extra)], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_runner_loads_no_converter_stack() -> None:
    loaded = _loaded_roots()
    assert "edgetally" in loaded and "onnxruntime" in loaded  # the probe really imported the runner
    assert not loaded.intersection(FORBIDDEN), f"runner imported {sorted(loaded.intersection(FORBIDDEN))}"


def test_running_the_cli_help_loads_no_converter_stack() -> None:
    extra = "from click.testing import CliRunner\nr = CliRunner().invoke(edgetally.cli.cli, ['run', '--help'])\nassert r.exit_code == 0, r.output"
    loaded = _loaded_roots(extra)
    assert not loaded.intersection(FORBIDDEN), f"'edge run --help' imported {sorted(loaded.intersection(FORBIDDEN))}"


@pytest.mark.parametrize("name", ["torch", "onnx"])
def test_forbidden_names_are_really_importable_or_absent(name: str) -> None:
    """Guard against a vacuous pass: the probe must be able to see a forbidden module if one is imported."""
    extra = f"try:\n    import {name}\nexcept ImportError:\n    pass"
    loaded = _loaded_roots(extra)
    import importlib.util

    if importlib.util.find_spec(name) is not None:
        assert name in loaded


def test_edge_label_and_train_help_load_no_training_stack() -> None:
    extra = (
        "from click.testing import CliRunner\n"
        "for c in ('label', 'train'):\n"
        "    r = CliRunner().invoke(edgetally.cli.cli, [c, '--help'])\n"
        "    assert r.exit_code == 0, r.output"
    )
    loaded = _loaded_roots(extra)
    assert not loaded.intersection(FORBIDDEN), (
        f"'edge label/train --help' imported {sorted(loaded.intersection(FORBIDDEN))}"
    )


def test_the_collector_loads_no_converter_stack() -> None:
    """`edge collect` runs on a server: a PostgreSQL driver is fine, torch and friends are not."""
    extra = (
        "import edgetally.cli.collect, edgetally.collect.collector, edgetally.collect.postgres_store\n"
        "import edgetally.collect.sqlite_store, edgetally.collect.metrics\n"
        "from edgetally.collect.store import open_store; open_store('postgresql://x@127.0.0.1:1/db')"
    )
    loaded = _loaded_roots(extra)
    assert "edgetally" in loaded
    assert not loaded.intersection(FORBIDDEN), f"the collector imported {sorted(loaded.intersection(FORBIDDEN))}"

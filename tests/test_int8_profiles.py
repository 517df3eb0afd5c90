"""Device profiles: every board named in the issue has a valid YAML, and `profiles` lists them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetally.cli.convert import profiles_command
from edgetally.errors import ConfigError
from edgetally.profiles import PROFILES_DIR, get_profile, list_profiles, load_profile_file

EXPECTED = {
    "rpi4": ("onnxruntime", "onnx"),
    "rpi5": ("openvino", "openvino"),
    "jetson-orin-nano-jp6": ("tensorrt", "onnx-tensorrt"),
    "intel-x86-openvino": ("openvino", "openvino"),
    "generic-onnxruntime": ("onnxruntime", "onnx"),
    "coral-edgetpu": ("litert", "tflite"),
}


def test_every_board_has_a_profile() -> None:
    found = {p.name: (p.runtime, p.format) for p in list_profiles()}
    assert found == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profile_cites_its_sources(name: str) -> None:
    text = (PROFILES_DIR / f"{name}.yaml").read_text()
    assert text.lstrip().startswith("#"), "each profile explains its defaults in a comment"
    assert get_profile(name).threads >= 1


def test_coral_is_full_integer() -> None:
    assert get_profile("coral-edgetpu").io_dtype == "uint8"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: bad\nboard: x\nruntime: tpu\n", "bad.yaml:3: runtime:"),
        (
            "name: other\nboard: x\nruntime: onnxruntime\nformat: onnx\nprecision: int8\ninput_size: 416\nthreads: 2\n"
            "camera: {source: v4l2, width: 640, height: 480, fps: 30}\n",
            "must match the file name",
        ),
        ("name: bad\n  - : [\n", "bad.yaml:2: YAML syntax error"),
    ],
)
def test_invalid_profiles_fail_clearly(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_profile_file(path)


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'nope'; known: coral-edgetpu"):
        get_profile("nope")


def test_profiles_command_lists_all() -> None:
    result = CliRunner().invoke(profiles_command, [])
    assert result.exit_code == 0, result.output
    for name in EXPECTED:
        assert name in result.output

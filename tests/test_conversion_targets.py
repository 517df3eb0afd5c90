"""The conversion-target registry is the one source of truth: profiles, CLI choices and manifests agree with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetally.artifact import DecoderSpec, InputSpec, Manifest, OutputSpec
from edgetally.converters.targets import TARGETS, check_precision, resolve
from edgetally.errors import ConfigError, ConversionError, UsageError
from edgetally.profiles import PROFILES_DIR, list_profiles, load_profile_file
from edgetally.runtimes import FORMATS, RUNTIMES


def test_every_target_runs_on_a_known_runtime_in_one_of_its_formats() -> None:
    for target in TARGETS.values():
        assert target.runtime in RUNTIMES, target.name
        assert target.format in RUNTIMES[target.runtime].formats, target.name
        assert target.executor is None or target.executor in RUNTIMES


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_builder_the_table_names_exists(name: str) -> None:
    target = TARGETS[name]
    for role in ("int8", "fallback", "repairs", "fp16", "finish"):
        if getattr(target, role) is not None:
            assert target.load(role) is not None, f"{name}.{role}"
    assert len(target.load("repairs")) >= 1


@pytest.mark.parametrize("profile", list_profiles(), ids=lambda p: p.name)
def test_every_profile_resolves_to_a_target_for_its_runtime_and_format(profile) -> None:
    target = resolve(profile.runtime, profile.io_dtype)
    assert (target.runtime, target.format) == (profile.runtime, profile.format)
    assert profile.io_dtype in target.io_dtypes
    check_precision(target, profile.precision)


def test_resolution_table() -> None:
    assert resolve().name == "onnxruntime"
    assert resolve("litert", "uint8").name == "litert-full-integer"
    assert resolve("litert").name == "litert"
    assert resolve(name="openvino").name == "openvino"
    with pytest.raises(UsageError, match="builds for runtime openvino, the profile runs onnxruntime"):
        resolve("onnxruntime", name="openvino")
    with pytest.raises(ConversionError, match="io_dtype uint8 .* runtime.s. litert only, not openvino"):
        resolve("openvino", "uint8")
    with pytest.raises(UsageError, match="target 'tpu' is not known; known: onnxruntime"):
        resolve(name="tpu")


@pytest.mark.parametrize(
    ("target", "message"),
    [("tensorrt", "already carries model.fp16.onnx"), ("litert", "FP16 TFLite is not implemented")],
)
def test_unbuilt_precisions_say_why(target: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_precision(TARGETS[target], "fp16")


def test_cli_target_choices_are_the_registry() -> None:
    from edgetally.cli.convert import convert

    option = next(p for p in convert.params if p.name == "target")
    assert list(option.type.choices) == list(TARGETS)
    result = CliRunner().invoke(
        convert, ["m.onnx", "--decoder", "yolox", "--input-size", "416", "--out", "o", "--target", "nope"]
    )
    assert result.exit_code == 2 and "nope" in result.output


def _manifest(**changes) -> dict:
    base = Manifest(
        format="onnx",
        runtime="onnxruntime",
        model_file="m.onnx",
        precision="int8",
        input=InputSpec(name="images", shape=[1, 3, 8, 8]),
        outputs=[OutputSpec(name="o", shape=[1, 2])],
        decoder=DecoderSpec(family="yolox"),
        labels=["a"],
        source_model_sha256="x",
        model_sha256="x",
    )
    return {**base.model_dump(), **changes}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"runtime": "tpu"}, "unknown runtime 'tpu'; known: litert, onnxruntime, openvino, tensorrt"),
        ({"runtime": "litert", "format": "onnx"}, "runtime 'litert' runs format.s. tflite, not 'onnx'"),
    ],
)
def test_manifest_runtime_and_format_come_from_the_runtime_registry(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Manifest.model_validate(_manifest(**changes))
    for runtime, info in RUNTIMES.items():  # every declared pair is accepted
        for fmt in info.formats:
            assert Manifest.model_validate(_manifest(runtime=runtime, format=fmt)).format in FORMATS


def test_profile_with_a_format_its_runtime_does_not_run_names_the_file(tmp_path: Path) -> None:
    body = (
        (PROFILES_DIR / "rpi5.yaml")
        .read_text()
        .replace("name: rpi5", "name: odd")
        .replace("format: openvino", "format: tflite")
    )
    (tmp_path / "odd.yaml").write_text(body)
    with pytest.raises(ConfigError, match="odd.yaml.*runs format.s. openvino, onnx, not 'tflite'"):
        load_profile_file(tmp_path / "odd.yaml")


def test_profiles_say_whether_int8_pays() -> None:
    stated = {p.name: p.int8_pays for p in list_profiles()}
    assert stated["generic-onnxruntime"] == "with-activation-replacement"
    assert stated["coral-edgetpu"] == "yes" and stated["rpi4"] == "unknown"

"""`edge convert` fp32 packaging: a valid artifact from the real YOLOX-nano, clear errors otherwise,
and the real model's detections on dog.jpg through the runner's own path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgetally.artifact import MANIFEST_NAME, Artifact
from edgetally.cli.convert import convert
from edgetally.converters.labels import load_labels
from edgetally.converters.package import package_fp32
from edgetally.errors import ConversionError, UsageError

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

YOLOX_SHA256_PREFIX = "695e750a5d5754bb"


@pytest.fixture(scope="module")
def yolox_model(shared_data: Path) -> Path:
    path = shared_data / "models" / "yolox_nano.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def yolox_artifact(yolox_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return package_fp32(yolox_model, tmp_path_factory.mktemp("art") / "yolox", "yolox", 416, "coco80")


def test_package_fp32_writes_a_complete_manifest(yolox_artifact: Artifact) -> None:
    m = yolox_artifact.manifest
    assert (m.format, m.runtime, m.precision, m.model_file) == ("onnx", "onnxruntime", "fp32", "yolox_nano.onnx")
    assert (m.input.name, m.input.shape, m.input.layout, m.input.dtype) == (
        "images",
        [1, 3, 416, 416],
        "NCHW",
        "float32",
    )
    assert (m.input.color, m.input.mean, m.input.std) == ("BGR", [0.0] * 3, [1.0] * 3)
    assert (m.input.resize, m.input.letterbox_align, m.input.pad_value) == ("letterbox", "top-left", 114)
    assert [(o.name, o.shape, o.role) for o in m.outputs] == [("output", [1, 3549, 85], "raw")]
    assert m.decoder.family == "yolox" and m.decoder.strides == [8, 16, 32]
    assert len(m.labels) == 80 and m.labels[:3] == ["person", "bicycle", "car"] and m.labels[79] == "toothbrush"
    assert m.source_model_sha256.startswith(YOLOX_SHA256_PREFIX) and m.model_sha256 == m.source_model_sha256
    assert set(m.tools) >= {"edgetally", "onnx", "onnxruntime"}
    assert m.created.endswith("+00:00")
    assert yolox_artifact.model_path.stat().st_size == 3_660_092
    raw = json.loads((yolox_artifact.directory / MANIFEST_NAME).read_text())
    assert raw["decoder"]["family"] == "yolox"  # the file on disk, not just the object, says so


def test_yolox_nano_detects_dog_bicycle_car(yolox_artifact: Artifact, shared_data: Path) -> None:
    import cv2

    from edgetally.postprocess import build_decoder
    from edgetally.preprocess import Preprocessor
    from edgetally.runtimes import load_runtime

    artifact = Artifact.load(yolox_artifact.directory)
    image = cv2.imread(str(shared_data / "models" / "dog.jpg"))
    tensor, letterbox = Preprocessor(artifact.manifest.input)(image)
    outputs = load_runtime(artifact, threads=1).infer(tensor)
    det = build_decoder(artifact.manifest)(outputs, letterbox)
    found = {artifact.manifest.labels[c]: (float(s), b) for c, s, b in zip(det.class_ids, det.scores, det.xyxy)}
    expected = {
        "dog": (0.86, [133, 207, 326, 543]),
        "bicycle": (0.80, [52, 137, 572, 424]),
        "car": (0.80, [466, 78, 692, 171]),
    }
    for name, (score, box) in expected.items():
        assert name in found, f"{name} not detected; got {sorted(found)}"
        assert found[name][0] == pytest.approx(score, abs=0.02), name
        np.testing.assert_allclose(found[name][1], box, atol=5, err_msg=name)
    top3 = [artifact.manifest.labels[c] for c in det.class_ids[:3]]
    assert top3 == ["dog", "bicycle", "car"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"nope\.onnx: no such file"):
        package_fp32(tmp_path / "nope.onnx", tmp_path / "out", "yolox", 416, "coco80")


@pytest.mark.parametrize(
    "content",
    [b"this is not an onnx model", np.random.default_rng(3).bytes(4096), b""],
    ids=["text", "random-bytes", "empty"],
)
def test_corrupt_file_is_not_an_onnx_model(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(ConversionError, match=r"bad\.onnx: not an ONNX model"):
        package_fp32(bad, tmp_path / "out", "yolox", 416, "coco80")
    assert not (tmp_path / "out").exists()


def test_wrong_decoder_for_the_output_shape(yolox_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConversionError) as info:
        package_fp32(yolox_model, tmp_path / "out", "yolov8", 416, "coco80")
    message = str(info.value)
    assert str(yolox_model) in message
    assert "output 'output' has shape [1, 3549, 85]; the yolov8 decoder expects [1, 4 + classes, 3549]" in message
    assert "it looks like a yolox raw head [1, anchors, 5 + classes]: try --decoder yolox" in message
    with pytest.raises(ConversionError, match="the boxes_scores decoder needs an output with role 'boxes'"):
        package_fp32(yolox_model, tmp_path / "out", "boxes_scores", 416, "coco80")


def test_label_count_must_match_the_model(yolox_model: Path, tmp_path: Path) -> None:
    labels = tmp_path / "voc.txt"
    labels.write_text("\n".join(f"class{i}" for i in range(20)) + "\n")
    with pytest.raises(ConversionError, match=r"labels: 20 names given but the model has 80 classes"):
        package_fp32(yolox_model, tmp_path / "out", "yolox", 416, labels)


def test_input_size_must_match_a_fixed_model_input(yolox_model: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ConversionError, match=r"input 'images' \[1, 3, 416, 416\] \(NCHW\) has height 416, expected 640"
    ):
        package_fp32(yolox_model, tmp_path / "out", "yolox", 640, "coco80")


def test_preprocessing_overrides_reach_the_manifest(yolox_model: Path, tmp_path: Path) -> None:
    artifact = package_fp32(
        yolox_model,
        tmp_path / "out",
        "yolox",
        (416, 416),
        "coco80",
        preprocess={"color": "RGB", "mean": 10, "std": [1, 2, 3], "letterbox_align": "center"},
        decoder_options={"score_threshold": 0.4, "class_agnostic_nms": True, "drop_contained": 0.8},
    )
    spec = artifact.manifest.input
    assert (spec.color, spec.mean, spec.std, spec.letterbox_align) == ("RGB", [10.0] * 3, [1.0, 2.0, 3.0], "center")
    assert artifact.manifest.decoder.score_threshold == 0.4 and artifact.manifest.decoder.class_agnostic_nms
    assert artifact.manifest.decoder.drop_contained == 0.8
    with pytest.raises(ConversionError, match="--std: values must be non-zero"):
        package_fp32(yolox_model, tmp_path / "o2", "yolox", 416, "coco80", preprocess={"std": 0})
    with pytest.raises(ConversionError, match=r"preprocessing option\(s\) \['colour'\] not known"):
        package_fp32(yolox_model, tmp_path / "o2", "yolox", 416, "coco80", preprocess={"colour": "RGB"})


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("l.txt", "cat\n\ndog\n"),
        ("l.yaml", "names:\n  0: cat\n  1: dog\n"),
        ("l.yml", "names: [cat, dog]\n"),
        ("l2.yaml", "- cat\n- dog\n"),
    ],
)
def test_label_files(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert load_labels(path) == ["cat", "dog"]


def test_label_errors(tmp_path: Path) -> None:
    assert len(load_labels("coco80")) == 80
    with pytest.raises(ConversionError, match=r"labels: coco81: no such file \(and not a built-in name: coco80\)"):
        load_labels("coco81")
    gap = tmp_path / "gap.yaml"
    gap.write_text("names:\n  0: a\n  2: b\n")
    with pytest.raises(ConversionError, match="class indices must be 0..1 without gaps"):
        load_labels(gap)


def test_cli_convert_fp32(yolox_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        convert,
        [
            str(yolox_model),
            "--precision",
            "fp32",
            "--decoder",
            "yolox",
            "--input-size",
            "416",
            "--labels",
            "coco80",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "decoder yolox, 80 classes" in result.output
    assert Artifact.load(out).manifest.precision == "fp32"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--precision", "int8"], "--calib is required for INT8"),
        (["--precision", "fp16"], "--eval-images is required for FP16"),
        (["--precision", "fp16", "--calib", "imgs"], "--calib applies only to --precision int8"),
        (["--profile", "rpi5"], "--calib is required for INT8"),
        (["--profile", "rpi5", "--precision", "fp32"], "--profile rpi5 builds the profile's INT8 artifact"),
        (["--calib", "imgs", "--fallback"], "--calib, --fallback: apply only to --precision int8 or fp16"),
        (["--max-map-drop", "0.5"], "--max-map-drop: applies only to --precision int8 or fp16"),
    ],
)
def test_cli_refuses_what_fp32_cannot_do(tmp_path: Path, extra: list[str], message: str) -> None:
    args = [str(tmp_path / "m.onnx"), "--decoder", "yolox", "--input-size", "416", "--out", str(tmp_path / "o"), *extra]
    result = CliRunner().invoke(convert, args)
    assert isinstance(result.exception, UsageError), result.output
    assert message in str(result.exception) and result.exception.exit_code == 2
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--input-size", "41x6x2"), ("--input-size", "big"), ("--mean", "1,2"), ("--strides", "8,a")]
)
def test_cli_rejects_malformed_values(tmp_path: Path, option: str, value: str) -> None:
    args = [str(tmp_path / "m.onnx"), "--decoder", "yolox", "--input-size", "416", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(convert, [*args, option, value])
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output

"""Decoders and NMS: numpy tables with hand-computed answers, and tiny ONNX graphs run end to end
(package_fp32 -> Artifact.load -> Preprocessor -> load_runtime -> decoder)."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest

from edgetally.artifact import Artifact, DecoderSpec, InputSpec, Manifest, OutputSpec
from edgetally.errors import ArtifactError, ConversionError
from edgetally.postprocess import batched_nms, box_iou, build_decoder, nms, validate_output_shapes
from edgetally.postprocess.decoders import make_grid
from edgetally.preprocess import Letterbox, Preprocessor

# The package exports the nms() function under the module's name; reach the module itself.
nms_module = importlib.import_module("edgetally.postprocess.nms")
IDENTITY = Letterbox(1.0, 1.0, 0.0, 0.0, 64, 64)
HALF = Letterbox(0.5, 0.5, 0.0, 0.0, 128, 128)  # a 128x128 source shrunk into a 64x64 input


def manifest(family: str, outputs: list[tuple[str, list[int], str]], labels: int = 2, **decoder: object) -> Manifest:
    return Manifest(
        format="onnx",
        runtime="onnxruntime",
        model_file="m.onnx",
        precision="fp32",
        input=InputSpec(name="images", shape=[1, 3, 64, 64]),
        outputs=[OutputSpec(name=n, shape=s, role=r) for n, s, r in outputs],  # type: ignore[arg-type]
        decoder=DecoderSpec(family=family, **decoder),  # type: ignore[arg-type]
        labels=[f"c{i}" for i in range(labels)],
        source_model_sha256="0",
        model_sha256="0",
    )


# ---------------------------------------------------------------- geometry and NMS


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [0, 0, 10, 5], 0.5),
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
        ([5, 5, 5, 5], [5, 5, 5, 5], 0.0),  # zero area: no division by zero
    ],
)
def test_box_iou_table(a: list[float], b: list[float], iou: float) -> None:
    assert box_iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(iou, abs=1e-6)


def test_box_iou_is_pairwise() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 20, 20]], np.float32)
    b = np.array([[0, 0, 10, 10], [0, 0, 5, 5], [100, 100, 110, 110]], np.float32)
    expected = np.array([[1.0, 0.25, 0.0], [0.25, 25 / 400, 0.0]])
    np.testing.assert_allclose(box_iou(a, b), expected, atol=1e-6)


BOXES = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)


@pytest.mark.parametrize(
    ("scores", "threshold", "max_output", "kept"),
    [
        ([0.9, 0.8, 0.7, 0.6], 0.5, None, [0, 2, 3]),  # 1 overlaps 0 by 0.82; 3 overlaps 0 by exactly 0.5: kept
        ([0.9, 0.8, 0.7, 0.6], 0.49, None, [0, 2]),
        ([0.9, 0.8, 0.7, 0.6], 0.9, None, [0, 1, 2, 3]),
        ([0.1, 0.8, 0.7, 0.6], 0.5, None, [1, 2, 3]),  # best first; 1 vs 3 IoU 45/105 < 0.5
        ([0.9, 0.8, 0.7, 0.6], 0.5, 2, [0, 2]),
        ([0.5, 0.5, 0.5, 0.5], 0.5, None, [0, 2, 3]),  # ties: lower index wins
    ],
)
@pytest.mark.parametrize("matrix_max", [512, 0], ids=["matrix", "loop"])
def test_nms_table(
    scores: list[float],
    threshold: float,
    max_output: int | None,
    kept: list[int],
    matrix_max: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nms_module, "MATRIX_NMS_MAX", matrix_max)
    assert nms(BOXES, np.array(scores), threshold, max_output).tolist() == kept


def test_nms_empty() -> None:
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), 0.5).shape == (0,)


def test_batched_nms_keeps_overlapping_boxes_of_different_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [1, 1, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7])
    classes = np.array([0, 1, 0])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, classes, 0.5, class_agnostic=True).tolist() == [0]


def test_batched_nms_matches_a_per_class_loop_on_random_boxes() -> None:
    rng = np.random.default_rng(7)
    xy = rng.uniform(-50, 600, (400, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 120, (400, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, 400).astype(np.float32)
    classes = rng.integers(0, 80, 400)
    expected = []
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        expected += idx[nms(boxes[idx], scores[idx], 0.45)].tolist()
    got = batched_nms(boxes, scores, classes, 0.45)
    assert sorted(got.tolist()) == sorted(expected)
    assert np.all(np.diff(scores[got]) <= 0)  # best first
    loop = batched_nms(np.tile(boxes, (2, 1)), np.tile(scores, 2), np.tile(classes, 2), 0.45)  # 800 > matrix max
    assert loop.tolist() == got.tolist()  # duplicates (index + 400) are suppressed by their originals


@pytest.mark.parametrize(
    ("boxes", "scores", "fraction", "kept"),
    [
        # a car's front half inside the whole car (IoU 0.5, all of the half inside): dropped
        ([[0, 0, 40, 20], [0, 0, 20, 20]], [0.9, 0.8], 0.8, [True, False]),
        # the half scores better: the whole box goes (one object, one box either way)
        ([[0, 0, 40, 20], [0, 0, 20, 20]], [0.7, 0.8], 0.8, [False, True]),
        # a cab 60 % inside a truck's box: kept at 0.8, dropped at 0.5
        ([[10, 0, 60, 20], [0, 0, 25, 20]], [0.9, 0.6], 0.8, [True, True]),
        ([[10, 0, 60, 20], [0, 0, 25, 20]], [0.9, 0.6], 0.5, [True, False]),
        # one box over two bicycles side by side: the two better ones stay, the merged one goes
        ([[0, 0, 10, 5], [12, 0, 22, 5], [0, 0, 22, 5]], [0.9, 0.9, 0.8], 0.8, [True, True, False]),
        # off
        ([[0, 0, 40, 20], [0, 0, 20, 20]], [0.9, 0.8], 0.0, [True, True]),
        # neighbours that touch share nothing
        ([[0, 0, 10, 10], [10, 0, 20, 10]], [0.9, 0.8], 0.5, [True, True]),
    ],
)
def test_boxes_inside_better_boxes_are_dropped(boxes: list, scores: list, fraction: float, kept: list) -> None:
    mask = nms_module.contained_duplicates(np.array(boxes, np.float32), np.array(scores, np.float32), fraction)
    assert mask.tolist() == kept


def test_the_decoder_drops_contained_boxes_when_the_manifest_says_so() -> None:
    pred = np.zeros((1, 6, 84), np.float32)
    pred[0, :, 40] = [32, 32, 20, 10, 0.6, 0.1]  # [22, 27, 42, 37], class 0
    pred[0, :, 41] = [24.5, 32, 5, 10, 0.0, 0.5]  # its left quarter, class 1 (IoU 0.25: NMS keeps it)
    got = {}
    for fraction in (0.0, 0.8):
        m = manifest("yolov8", [("output0", [1, 6, 84], "raw")], class_agnostic_nms=True, drop_contained=fraction)
        got[fraction] = build_decoder(m)([pred], IDENTITY).class_ids.tolist()
    assert got == {0.0: [0, 1], 0.8: [0]}
    with pytest.raises(ValueError, match="less than or equal to 1"):
        manifest("yolov8", [("output0", [1, 6, 84], "raw")], drop_contained=1.5)


# ---------------------------------------------------------------- decoder tables


def test_make_grid_order_matches_the_yolox_head() -> None:
    xy, strides = make_grid(64, 64, [8, 16, 32])
    assert xy.shape == (84, 2) and strides.shape == (84, 1)
    assert xy[26].tolist() == [2, 3] and strides[26, 0] == 8  # row 3, column 2 of the 8x8 grid
    assert xy[64 + 4 + 2].tolist() == [2, 1] and strides[70, 0] == 16
    assert xy[83].tolist() == [1, 1] and strides[83, 0] == 32


def yolox_head() -> np.ndarray:
    head = np.zeros((1, 84, 7), np.float32)
    head[0, 26] = [0.5, 0.5, math.log(2), 0.0, 0.9, 0.1, 0.8]  # cx 20, cy 28, w 16, h 8 -> class 1, 0.72
    head[0, 70] = [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 0.0]  # cx 32, cy 16, w 16, h 16 -> class 0, 0.5
    head[0, 83] = [0.5, 0.5, 0.0, 0.0, 0.2, 0.9, 0.0]  # cx 48, cy 48, 32 x 32 -> 0.18 (obj too low)
    head[0, 0] = [0.0, 0.0, 0.0, 0.0, 0.9, 0.2, 0.1]  # high objectness, weak class: 0.18
    return head


@pytest.mark.parametrize(
    ("threshold", "letterbox", "boxes", "scores", "classes"),
    [
        (0.25, IDENTITY, [[12, 24, 28, 32], [24, 8, 40, 24]], [0.72, 0.5], [1, 0]),
        (0.25, HALF, [[24, 48, 56, 64], [48, 16, 80, 48]], [0.72, 0.5], [1, 0]),
        (0.6, IDENTITY, [[12, 24, 28, 32]], [0.72], [1]),
        (
            0.1,
            IDENTITY,
            [[12, 24, 28, 32], [24, 8, 40, 24], [-4, -4, 4, 4], [32, 32, 64, 64]],
            [0.72, 0.5, 0.18, 0.18],
            [1, 0, 0, 0],
        ),
    ],
)
def test_yolox_decoder_table(threshold: float, letterbox: Letterbox, boxes: list, scores: list, classes: list) -> None:
    decoder = build_decoder(manifest("yolox", [("output", [1, 84, 7], "raw")]), score_threshold=threshold)
    det = decoder([yolox_head()], letterbox)
    expected = np.clip(np.array(boxes, np.float32), 0, letterbox.src_width)  # to_source clips to the image
    np.testing.assert_allclose(det.xyxy, expected, atol=1e-4)
    np.testing.assert_allclose(det.scores, scores, atol=1e-6)
    assert det.class_ids.tolist() == classes


def test_yolox_decoder_caps_max_detections() -> None:
    decoder = build_decoder(manifest("yolox", [("output", [1, 84, 7], "raw")]), max_detections=1)
    assert build_decoder(manifest("yolox", [("output", [1, 84, 7], "raw")])).max_detections == 300
    det = decoder([yolox_head()], IDENTITY)
    assert len(det) == 1 and det.scores[0] == pytest.approx(0.72)


def yolov8_pred() -> np.ndarray:
    pred = np.zeros((1, 6, 84), np.float32)
    pred[0, :, 5] = [10, 20, 4, 6, 0.3, 0.7]  # -> [8, 17, 12, 23], class 1
    pred[0, :, 40] = [32, 32, 10, 10, 0.6, 0.1]  # -> [27, 27, 37, 37], class 0
    pred[0, :, 41] = [32, 33, 10, 10, 0.5, 0.0]  # same object, class 0, weaker: suppressed
    pred[0, :, 42] = [33, 32, 10, 10, 0.0, 0.55]  # same place, class 1: kept unless class-agnostic
    pred[0, :, 50] = [50, 50, 8, 8, 0.2, 0.1]  # under the threshold
    return pred


@pytest.mark.parametrize(
    ("agnostic", "letterbox", "boxes", "scores", "classes"),
    [
        (False, IDENTITY, [[8, 17, 12, 23], [27, 27, 37, 37], [28, 27, 38, 37]], [0.7, 0.6, 0.55], [1, 0, 1]),
        (True, IDENTITY, [[8, 17, 12, 23], [27, 27, 37, 37]], [0.7, 0.6], [1, 0]),
        # centred letterbox: a 128x96 source at scale 0.5 sits 8 px down in the 64x64 input
        (True, Letterbox(0.5, 0.5, 0.0, 8.0, 128, 96), [[16, 18, 24, 30], [54, 38, 74, 58]], [0.7, 0.6], [1, 0]),
    ],
)
def test_yolov8_decoder_table(agnostic: bool, letterbox: Letterbox, boxes: list, scores: list, classes: list) -> None:
    m = manifest("yolov8", [("output0", [1, 6, 84], "raw")], class_agnostic_nms=agnostic)
    det = build_decoder(m)([yolov8_pred()], letterbox)
    np.testing.assert_allclose(det.xyxy, boxes, atol=1e-4)
    np.testing.assert_allclose(det.scores, scores, atol=1e-6)
    assert det.class_ids.tolist() == classes


@pytest.mark.parametrize("normalized", [False, True])
def test_boxes_scores_decoder_table(normalized: bool) -> None:
    boxes = np.array([[[4, 8, 20, 24], [40, 40, 60, 60], [0, 0, 64, 64]]], np.float32)
    scores = np.array([[[0.9, 0.1], [0.2, 0.4], [0.1, 0.2]]], np.float32)
    m = manifest(
        "boxes_scores", [("boxes", [1, 3, 4], "boxes"), ("scores", [1, 3, 2], "scores")], boxes_normalized=normalized
    )
    det = build_decoder(m)([boxes / 64 if normalized else boxes, scores], HALF)
    np.testing.assert_allclose(det.xyxy, [[8, 16, 40, 48], [80, 80, 120, 120]], atol=1e-3)
    np.testing.assert_allclose(det.scores, [0.9, 0.4], atol=1e-6)
    assert det.class_ids.tolist() == [0, 1]


def test_boxes_scores_decoder_with_class_ids_and_count() -> None:
    outputs = [
        ("count", [1], "count"),
        ("boxes", [1, 4, 4], "boxes"),
        ("scores", [1, 4], "scores"),
        ("classes", [1, 4], "class_ids"),
    ]
    arrays = [
        np.array([2], np.float32),
        np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 5], [0, 0, 0, 0]]], np.float32),
        np.array([[0.8, 0.3, 0.99, 0.99]], np.float32),  # rows past `count` are padding
        np.array([[1, 0, 1, 1]], np.float32),
    ]
    det = build_decoder(manifest("boxes_scores", outputs))(arrays, IDENTITY)
    np.testing.assert_allclose(det.xyxy, [[0, 0, 10, 10], [20, 20, 30, 30]])
    assert det.class_ids.tolist() == [1, 0]


def test_decoder_returns_empty_detections_when_nothing_passes() -> None:
    det = build_decoder(manifest("yolox", [("output", [1, 84, 7], "raw")]))(
        [np.zeros((1, 84, 7), np.float32)], IDENTITY
    )
    assert len(det) == 0 and det.xyxy.shape == (0, 4)


def test_decoder_rejects_outputs_that_differ_from_the_manifest() -> None:
    decoder = build_decoder(manifest("yolox", [("output", [1, 84, 7], "raw")]))
    with pytest.raises(
        ArtifactError, match=r"returned outputs shaped \[\[1, 84, 8\]\]; the manifest says \[\[1, 84, 7\]\]"
    ):
        decoder([np.zeros((1, 84, 8), np.float32)], IDENTITY)


@pytest.mark.parametrize(
    ("family", "outputs", "message"),
    [
        ("yolox", [("output", [1, 84, 7], "raw"), ("x", [1], "raw")], "expects one output"),
        ("yolox", [("output", [1, 7, 84], "raw")], r"expects 84 for a 64x64 input with strides 8,16,32"),
        ("yolox", [("output", [1, 84, 9], "raw")], r"2 names given but the model has 4 classes"),
        ("yolox", [("output", [84, 7], "raw")], r"expects the raw head \[1, anchors, 5 \+ classes\]"),
        ("yolov8", [("output0", [1, 84, 6], "raw")], r"it looks transposed"),
        ("yolov8", [("output0", [1, 84, 7], "raw")], r"yolox raw head .*: try --decoder yolox"),
        ("yolox", [("output", [1, 6, 84], "raw")], r"Ultralytics layout .*: try --decoder yolov8"),
        ("yolov8", [("output0", [1, 7, 84], "raw")], r"2 names given but the model has 3 classes"),
        ("boxes_scores", [("a", [1, 3, 4], "raw"), ("b", [1, 3, 2], "raw")], "needs an output with role 'boxes'"),
        ("boxes_scores", [("a", [1, 3, 4], "boxes"), ("b", [1, 5, 2], "scores")], r"to match boxes \[1, 3, 4\]"),
        ("boxes_scores", [("a", [1, 3, 4], "boxes"), ("b", [1, 3], "scores")], "role 'class_ids'"),
    ],
)
def test_validate_output_shapes_explains_the_mismatch(family: str, outputs: list, message: str) -> None:
    m = manifest(family, outputs)
    with pytest.raises(ArtifactError, match=message):
        validate_output_shapes(m, [s for _, s, _ in outputs])


# ---------------------------------------------------------------- tiny ONNX graphs, end to end


def _graph_with_mean_score(path: Path, outputs: dict[str, np.ndarray], dynamic: tuple[str, tuple[int, ...]]) -> Path:
    """A graph whose outputs are constants, except one element = mean of the input tensor."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0)]
    initializers = []
    for name, value in outputs.items():
        initializers.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_const"))
        mask = np.zeros_like(value, dtype=np.float32)
        if name == dynamic[0]:
            mask[dynamic[1]] = 1.0
        initializers.append(numpy_helper.from_array(mask, f"{name}_mask"))
        nodes += [
            helper.make_node("Mul", [f"{name}_mask", "mean"], [f"{name}_dyn"]),
            helper.make_node("Add", [f"{name}_const", f"{name}_dyn"], [name]),
        ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape)) for n, v in outputs.items()],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _run(artifact_dir: Path, image: np.ndarray):
    from edgetally.runtimes import load_runtime

    artifact = Artifact.load(artifact_dir)
    tensor, letterbox = Preprocessor(artifact.manifest.input)(image)
    outputs = load_runtime(artifact, threads=1).infer(tensor)
    return build_decoder(artifact.manifest)(outputs, letterbox)


@pytest.fixture(scope="module")
def yolov8_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pred = np.zeros((1, 6, 84), np.float32)
    pred[0, :4, 5] = [10, 20, 4, 6]  # class 1 score of anchor 5 = mean(input tensor)
    return _graph_with_mean_score(
        tmp_path_factory.mktemp("v8") / "tiny_v8.onnx", {"output0": pred}, ("output0", (0, 5, 5))
    )


def test_yolov8_graph_end_to_end_with_centred_letterbox(yolov8_graph: Path, tmp_path: Path) -> None:
    from edgetally.converters.package import package_fp32

    package_fp32(yolov8_graph, tmp_path / "art", "yolov8", 64, ["cat", "dog"])
    # 128 wide x 64 high source -> scale 0.5 -> 64x32, centred: 16 px of pad 114 above and below.
    det = _run(tmp_path / "art", np.full((64, 128, 3), 204, np.uint8))
    # RGB / 255 of (half 204, half 114) -> mean 0.6235; box [8, 17, 12, 23] -> y (17 - 16) / 0.5 = 2
    np.testing.assert_allclose(det.scores, [(204 + 114) / 2 / 255], atol=1e-5)
    np.testing.assert_allclose(det.xyxy, [[16, 2, 24, 14]], atol=1e-3)
    assert det.class_ids.tolist() == [1]
    assert len(_run(tmp_path / "art", np.full((64, 64, 3), 51, np.uint8))) == 0  # score 0.2 < 0.25


def test_boxes_scores_graph_end_to_end_with_guessed_roles(tmp_path: Path) -> None:
    from edgetally.converters.package import package_fp32

    boxes = np.array([[[0.25, 0.25, 0.5, 0.75], [0, 0, 1, 1]]], np.float32)
    scores = np.zeros((1, 2, 3), np.float32)
    graph = _graph_with_mean_score(tmp_path / "bs.onnx", {"out_b": boxes, "out_s": scores}, ("out_s", (0, 0, 2)))
    artifact = package_fp32(
        graph,
        tmp_path / "art",
        "boxes_scores",
        64,
        ["a", "b", "c"],
        preprocess={"std": 255.0, "color": "BGR"},
        decoder_options={"boxes_normalized": True},
    )
    assert [o.role for o in artifact.manifest.outputs] == ["boxes", "scores"]
    det = _run(tmp_path / "art", np.full((128, 128, 3), 255, np.uint8))
    np.testing.assert_allclose(det.xyxy, [[32, 32, 64, 96]], atol=1e-3)
    np.testing.assert_allclose(det.scores, [1.0], atol=1e-5)
    assert det.class_ids.tolist() == [2]


def test_packaging_a_graph_with_the_wrong_decoder_or_labels_fails_clearly(yolov8_graph: Path, tmp_path: Path) -> None:
    from edgetally.converters.package import package_fp32

    with pytest.raises(
        ConversionError, match=r"tiny_v8.onnx: output 'output0' has 6 anchors; the yolox decoder expects 84"
    ):
        package_fp32(yolov8_graph, tmp_path / "a", "yolox", 64, ["x"])
    with pytest.raises(ConversionError, match=r"tiny_v8.onnx: labels: 3 names given but the model has 2 classes"):
        package_fp32(yolov8_graph, tmp_path / "b", "yolov8", 64, ["a", "b", "c"])
    with pytest.raises(ConversionError, match=r"tiny_v8.onnx: input 'images' .* has height 64, expected 32"):
        package_fp32(yolov8_graph, tmp_path / "c", "yolov8", 32, ["a", "b"])
    assert not (tmp_path / "a").exists()  # nothing written when a check fails

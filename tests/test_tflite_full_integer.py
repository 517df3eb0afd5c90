"""Full-integer TFLite (int8/uint8 input AND outputs) for the Coral profile: output split, uint8
interface, per-part dequantisation in the LiteRT runtime, and detections on a real photo.

CI-sized: a tiny YOLOX-shaped model (32x32, 21 anchors, 1 class) for the mechanics, and one
YOLOX-nano conversion (16 calibration images, the all-integer rung only) for the real-image check.
The accuracy gate at the 1.0-point budget on YOLOX-nano is measured by
``benchmarks/convert_bench.py --targets coral``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from edgetally.artifact import Artifact  # noqa: E402
from edgetally.converters.targets.tflite import missing_packages  # noqa: E402

pytestmark = pytest.mark.skipif(
    bool(missing_packages()),
    reason=f"TFLite INT8 conversion needs the convert-tflite extra (missing: {', '.join(missing_packages())})",
)

SIZE = 32
INTEGER = {np.int8, np.uint8, np.int32}  # int32: biases and shape operands


class _TinyYolox(torch.nn.Module):
    """YOLOX's layout at 32x32: a conv -> SiLU -> depthwise -> SiLU -> conv stem whose channels differ 50x in
    range (as folded batch norm leaves them), and per stride (8, 16, 32) cat([reg, sigmoid(obj), sigmoid(cls)])."""

    def __init__(self) -> None:
        super().__init__()
        self.downs = torch.nn.ModuleList(
            [torch.nn.Conv2d(3 if i == 0 else 8, 8, 3, 2, 1, groups=8 if i == 1 else 1) for i in range(5)]
        )
        self.heads = torch.nn.ModuleList([torch.nn.Conv2d(8, 6, 1) for _ in range(3)])
        with torch.no_grad():
            self.downs[0].weight[4:] *= 0.02
            self.downs[1].weight[4:] *= 50.0

    def forward(self, x):
        y, levels = x / 255.0, []
        for index, down in enumerate(self.downs):
            y = torch.nn.functional.silu(down(y))
            if index >= 2:
                levels.append(y)
        outs = []
        for feature, head in zip(levels, self.heads):
            z = head(feature)
            outs.append(
                torch.cat([z[:, :4] * 8.0, torch.sigmoid(z[:, 4:])], dim=1).reshape(1, 6, -1)
            )  # boxes span more
        return torch.cat(outs, dim=2).permute(0, 2, 1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    from edgetally.converters.package import package_fp32

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    torch.onnx.export(
        _TinyYolox().eval(),
        (torch.rand(1, 3, SIZE, SIZE) * 255,),
        str(path),
        dynamo=False,
        opset_version=13,
        input_names=["images"],
        output_names=["output"],
    )
    return package_fp32(path, path.parent / "fp32", "yolox", SIZE, ["thing"])


def _calibration(count: int = 16):
    from edgetally.converters.accuracy.calibration import CalibrationSet

    tensors = np.random.default_rng(0).uniform(0, 255, (count, 3, SIZE, SIZE)).astype(np.float32)
    names = tuple(f"random{i}" for i in range(count))
    return CalibrationSet(tensors, names, names, "random")


def _tflite_dtypes(path: Path) -> tuple[list, list, set]:
    from edgetally.runtimes.litert import _interpreter_class

    interpreter = _interpreter_class()(model_path=str(path))
    interpreter.allocate_tensors()
    ios = [d["dtype"] for d in interpreter.get_input_details()], [d["dtype"] for d in interpreter.get_output_details()]
    return ios[0], ios[1], {d["dtype"] for d in interpreter.get_tensor_details()}


def test_split_output_is_exact_and_separates_the_packed_tensor(tiny: Artifact, tmp_path: Path) -> None:
    import onnx

    from edgetally.converters.graph.output_split import split_output

    shapes = split_output(tiny.model_path, tmp_path / "split.onnx", [4], ["boxes", "scores"])
    assert shapes == [[1, 21, 4], [1, 21, 2]]
    x = _calibration(1).tensors
    packed = ort.InferenceSession(str(tiny.model_path)).run(None, {"images": x})[0]
    boxes, scores = ort.InferenceSession(str(tmp_path / "split.onnx")).run(None, {"images": x})
    np.testing.assert_array_equal(np.concatenate([boxes, scores], axis=-1), packed)
    # The split reaches the head: no tensor mixing box and score channels is left in the graph.
    nodes = onnx.load(str(tmp_path / "split.onnx")).graph.node
    assert not [n.name for n in nodes if n.name.startswith("split_slice")]  # no fallback slice of the packed tensor
    before = [n.op_type for n in onnx.load(str(tiny.model_path)).graph.node]
    after = [n.op_type for n in nodes]
    assert after.count("Sigmoid") == before.count("Sigmoid") and after[-2:] == ["Transpose"] * 2


def test_stem_split_is_exact_and_groups_channels_by_range(tiny: Artifact, tmp_path: Path) -> None:
    import onnx

    from edgetally.converters.graph.stem_split import channel_groups, split_stem_channels

    assert channel_groups(np.array([100.0, 0.5, 90.0, 0.4, 10.0])) == [[0, 2], [4], [1, 3]]
    info = split_stem_channels(tiny.model_path, tmp_path / "stem.onnx", _calibration())
    assert info["stem_split_groups"] >= 2
    x = _calibration(1).tensors
    before = ort.InferenceSession(str(tiny.model_path)).run(None, {"images": x})[0]
    after = ort.InferenceSession(str(tmp_path / "stem.onnx")).run(None, {"images": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)
    depthwise = [n for n in onnx.load(str(tmp_path / "stem.onnx")).graph.node if n.name.endswith("_depthwise")]
    assert len(depthwise) == info["stem_split_groups"]


def test_uint8_full_integer_artifact_runs_with_per_part_scales(tiny: Artifact, tmp_path: Path) -> None:
    from edgetally.converters.targets.tflite_full_int import EDGETPU_SCRIPT, STEM_SPLIT_ONLY, full_integer_builder
    from edgetally.preprocess import Preprocessor
    from edgetally.runtimes import load_runtime

    build = full_integer_builder(tiny, _calibration(), tmp_path / "work", "uint8")
    artifact, info = build(STEM_SPLIT_ONLY, tmp_path / "art")
    inputs, outputs, every = _tflite_dtypes(artifact.model_path)
    assert inputs == [np.uint8] and outputs == [np.uint8, np.uint8]
    assert every <= INTEGER and info["ops_float"] == 0 and info["edge_tpu_ready"]  # nothing float left at all
    assert info["stem_split_groups"] >= 2
    m = Artifact.load(artifact.directory).manifest  # the manifest round-trips from disk
    assert m.input.dtype == "uint8" and (m.input.quantization.scale, m.input.quantization.zero_point) == (1.0, 0)
    (out,) = m.outputs
    assert out.shape == [1, 21, 6] and [p.shape for p in out.parts] == [[1, 21, 4], [1, 21, 2]]
    assert out.parts[0].quantization.scale > 2 * out.parts[1].quantization.scale  # boxes got their own, wider scale
    assert "edgetpu_compiler" in (artifact.directory / EDGETPU_SCRIPT).read_text()
    image = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    tensor, _ = Preprocessor(m.input)(image)
    assert tensor.dtype == np.uint8 and np.array_equal(tensor[0].transpose(1, 2, 0), image)  # raw pixels
    runtime = load_runtime(artifact, threads=1)
    (got,) = runtime.infer(tensor)
    expected = ort.InferenceSession(str(tiny.model_path)).run(None, {"images": tensor.astype(np.float32)})[0]
    assert got.shape == expected.shape and got.dtype == np.float32
    for lo, hi, _part in ((0, 4, out.parts[0]), (4, 6, out.parts[1])):
        error = np.abs(got[..., lo:hi] - expected[..., lo:hi]).max()
        spread = float(np.ptp(expected[..., lo:hi]))
        assert error < 0.1 * spread, (lo, error, spread)
    assert out.parts[1].quantization.scale <= 1 / 255 + 1e-9  # probabilities keep a [0, 1] scale of their own


def test_older_manifests_without_parts_still_load(yolox_fp32_artifact: Path, tmp_path: Path) -> None:
    raw = json.loads((yolox_fp32_artifact / "manifest.json").read_text())
    assert "parts" not in json.dumps(raw["outputs"]) or raw["outputs"][0]["parts"] == []
    for output in raw["outputs"]:
        output.pop("parts", None)  # exactly what artifacts written before the field look like
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(raw))
    (tmp_path / "old" / raw["model_file"]).symlink_to(yolox_fp32_artifact / raw["model_file"])
    assert Artifact.load(tmp_path / "old").manifest.outputs[0].parts == []


def test_yolox_nano_full_integer_agrees_with_fp32_on_a_real_photo(
    shared_data: Path, yolox_fp32_artifact: Path, tmp_path: Path
) -> None:
    import cv2

    from edgetally.converters.accuracy.calibration import load_calibration
    from edgetally.converters.accuracy.evaluate import EvalImage, detect_all
    from edgetally.converters.accuracy.metrics import box_iou
    from edgetally.converters.targets.tflite_full_int import FULL_INTEGER_REPAIRS, full_integer_builder

    reference = Artifact.load(yolox_fp32_artifact)
    calibration = load_calibration(shared_data / "coco" / "coco128_train2017" / "images", reference.manifest.input, 16)
    build = full_integer_builder(reference, calibration, tmp_path / "work", "uint8")
    artifact, _info = build(FULL_INTEGER_REPAIRS[0], tmp_path / "coral")
    inputs, outputs, every = _tflite_dtypes(artifact.model_path)
    assert inputs == [np.uint8] and outputs == [np.uint8, np.uint8] and every <= INTEGER
    photo = [EvalImage(Path("dog.jpg"), cv2.imread(str(shared_data / "models" / "dog.jpg")), None)]
    ref = detect_all(reference, photo, score_threshold=0.4)[0]
    got = detect_all(artifact, photo, score_threshold=0.4)[0]
    assert sorted(ref.class_ids.tolist()) == [1, 2, 16]  # bicycle, car, dog
    for cls in (1, 2, 16):
        mine, theirs = got.xyxy[got.class_ids == cls], ref.xyxy[ref.class_ids == cls]
        assert len(mine) >= 1, f"class {cls} lost"
        assert box_iou(theirs, mine).max() > 0.75, (cls, theirs, mine)


def test_depthwise_chain_split_is_exact_and_finds_the_tiny_chain(tiny: Artifact, tmp_path: Path) -> None:
    from edgetally.converters.graph.channel_split import split_depthwise_chains

    info = split_depthwise_chains(tiny.model_path, tmp_path / "dw.onnx", _calibration())
    assert info["depthwise_chains"] == 1 and info["depthwise_chains_split"] == 1  # conv -> dw -> conv, uneven
    assert info["depthwise_split"][0]["peak_ratio"] > 4 and info["depthwise_split_groups"] >= 2
    x = _calibration(1).tensors
    before = ort.InferenceSession(str(tiny.model_path)).run(None, {"images": x})[0]
    after = ort.InferenceSession(str(tmp_path / "dw.onnx")).run(None, {"images": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)


def test_silu_floor_moves_no_output_by_more_than_half_a_step() -> None:
    from edgetally.converters.targets.tflite_ranges import SILU_ARGMIN, silu_floor

    def silu(x):
        return x / (1.0 + np.exp(-x))

    for step in (0.005, 0.02, 0.1, 0.6):
        floor = silu_floor(step)
        below = -floor - np.geomspace(1e-6, 200.0, 2000)
        assert np.abs(silu(below) - silu(-floor)).max() <= step / 2 + 1e-12  # clipping at -floor is invisible
        assert abs(silu(-floor)) <= step / 2 + 1e-12
        if floor > -SILU_ARGMIN + 1e-6:  # and it is the smallest such floor
            assert abs(silu(-floor + 0.01)) > step / 2
    assert silu_floor(0.02) > silu_floor(0.1) > 1.27  # a finer output grid sees further down


def test_range_repair_rung_is_all_integer_with_mse_ranges(tiny: Artifact, tmp_path: Path) -> None:
    from ai_edge_quantizer import quantizer as aeq

    from edgetally.converters.targets.tflite import TflGraph
    from edgetally.converters.targets.tflite_full_int import FULL_INTEGER_REPAIRS, full_integer_builder
    from edgetally.converters.targets.tflite_ranges import calibrate_global_minmax
    from edgetally.runtimes import load_runtime

    rung = next(s for s in FULL_INTEGER_REPAIRS if s.split_depthwise_channels)
    assert FULL_INTEGER_REPAIRS.index(rung) < len(FULL_INTEGER_REPAIRS) - 1  # tried before the float-ops rung
    artifact, info = full_integer_builder(tiny, _calibration(), tmp_path / "work", "uint8")(rung, tmp_path / "art")
    inputs, outputs, every = _tflite_dtypes(artifact.model_path)
    assert inputs == [np.uint8] and outputs == [np.uint8, np.uint8] and every <= INTEGER and info["ops_float"] == 0
    assert info["depthwise_chains_split"] == 1 and info["calibrator"].startswith("mse") and info["mse_ranges"] > 10
    assert "silu_floors" in info  # how many SiLU inputs were floored (0 here: the tiny model's stay above the floors)
    x = _calibration(1).tensors
    (got,) = load_runtime(artifact, threads=1).infer(x.astype(np.uint8))
    expected = ort.InferenceSession(str(tiny.model_path)).run(None, {"images": x.astype(np.uint8).astype(np.float32)})[
        0
    ]
    assert np.abs(got - expected).max() < 0.1 * float(np.ptp(expected))
    # Global min/max contains every image's range; the default moving average sits inside it.
    fp32 = tmp_path / "work" / "fp32-tflite" / "fp32-depthwise-split.tflite"
    signature, io = TflGraph(fp32).signature
    data = {signature: [{io["inputs"][0]: b} for b in _calibration().batches()]}
    quantizer = aeq.Quantizer(str(fp32))
    quantizer.add_static_config(".*", "*", 8, 8)
    ema, full = (
        quantizer.calibrate(data, num_threads=1),
        calibrate_global_minmax(fp32, quantizer.get_quantization_recipe(), data, 1),
    )
    assert ema.keys() == full.keys()
    assert all(
        np.all(full[k]["min"] <= ema[k]["min"] + 1e-6) and np.all(full[k]["max"] >= ema[k]["max"] - 1e-6) for k in ema
    )
    assert any(np.any(full[k]["max"] > ema[k]["max"] + 1e-4) for k in ema)


def test_yolox_nano_depthwise_chain_split_is_exact(
    shared_data: Path, yolox_fp32_artifact: Path, tmp_path: Path
) -> None:
    import cv2
    import onnx

    from edgetally.converters.accuracy.calibration import load_calibration
    from edgetally.converters.graph.channel_split import split_depthwise_chains
    from edgetally.preprocess import Preprocessor

    reference = Artifact.load(yolox_fp32_artifact)
    calibration = load_calibration(shared_data / "coco" / "coco128_train2017" / "images", reference.manifest.input, 16)
    info = split_depthwise_chains(reference.model_path, tmp_path / "dw.onnx", calibration)
    # YOLOX-nano: the stem, every CSP bottleneck and every stride-2 DWConv is Conv -> SiLU -> dw -> SiLU -> Conv.
    assert info["depthwise_chains"] == 20 and info["depthwise_chains_split"] >= 10
    assert info["depthwise_split"][0]["peak_ratio"] > 100  # the stem: channels 0.16..138
    nodes = onnx.load(str(tmp_path / "dw.onnx")).graph.node
    assert sum(n.name.endswith("_depthwise") for n in nodes) == info["depthwise_split_groups"]
    tensor, _ = Preprocessor(reference.manifest.input)(cv2.imread(str(shared_data / "models" / "dog.jpg")))
    name = reference.manifest.input.name
    before = ort.InferenceSession(str(reference.model_path)).run(None, {name: tensor})[0]
    after = ort.InferenceSession(str(tmp_path / "dw.onnx")).run(None, {name: tensor})[0]
    np.testing.assert_allclose(after, before, rtol=1e-3, atol=1e-3)


def test_mse_range_clips_rare_outliers_and_keeps_a_dense_range() -> None:
    from edgetally.converters.targets.tflite_ranges import HISTOGRAM_BINS, mse_range

    values = np.random.default_rng(0).normal(0.0, 1.0, 200_000)
    dense = np.histogram(values, HISTOGRAM_BINS, (-5.0, 5.0))[0]
    low, high = mse_range(dense, -5.0, 5.0)
    assert -5.0 <= low < -2.5 and 2.5 < high <= 5.0  # a Gaussian keeps most of its range
    flat = np.histogram(np.random.default_rng(1).uniform(-1.0, 3.0, 200_000), HISTOGRAM_BINS, (-1.0, 3.0))[0]
    assert mse_range(flat, -1.0, 3.0) == pytest.approx((-1.0, 3.0), abs=0.05)  # nothing to gain from clipping
    tailed = np.random.default_rng(2).laplace(0.0, 1.0, 200_000)  # heavy tails: their rare ends get clipped
    low, high = mse_range(
        np.histogram(tailed, HISTOGRAM_BINS, (tailed.min(), tailed.max()))[0], tailed.min(), tailed.max()
    )
    assert 0.5 < low / tailed.min() < 0.9 and 0.5 < high / tailed.max() < 0.9

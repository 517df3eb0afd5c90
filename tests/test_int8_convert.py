"""INT8 and FP16 conversion with the accuracy gate, on the real YOLOX-nano and COCO images.

Kept CI-sized: 32 calibration images, 32 *other* images for evaluation, one conversion per format
shared by the tests (session fixtures). The ORT test budget is relaxed to 3 points and its ladder
shortened to (naive, float stem) so the repair loop is exercised without the ~90 s percentile
calibration; benchmarks/convert_bench.py runs the full ladder at the real 1.0-point budget.
FP16 and --fallback go through the CLI on 20 linked images with 3 latency runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgetally.artifact import Artifact
from edgetally.cli.convert import convert, verify_command
from edgetally.converters.accuracy.calibration import load_calibration
from edgetally.converters.accuracy.evaluate import load_eval_set
from edgetally.converters.accuracy.folds import Fold
from edgetally.converters.accuracy.gate import GateConfig, evaluate_reference, judge
from edgetally.converters.accuracy.strategy import MIXED_STEM, NAIVE, TAIL_FLOAT
from edgetally.converters.build import BuildOptions, build_int8
from edgetally.converters.convert import summary
from edgetally.converters.package import package_fp32
from edgetally.cpu import describe_cpu
from edgetally.errors import ConversionError, UsageError
from edgetally.profiles import PROFILES_DIR

CALIB, EVAL = 32, 32


@pytest.fixture(scope="session")
def coco(shared_data: Path) -> Path:
    return shared_data / "coco" / "coco128_train2017"


@pytest.fixture(scope="session")
def fp32(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return package_fp32(shared_data / "models" / "yolox_nano.onnx", tmp_path_factory.mktemp("fp32") / "a", "yolox", 416)


@pytest.fixture(scope="session")
def calibration(fp32: Artifact, coco: Path):
    return load_calibration(coco / "images", fp32.manifest.input, CALIB)


@pytest.fixture(scope="session")
def eval_set(calibration, coco: Path):
    return load_eval_set(coco / "images", coco / "labels", calibration.sha256, limit=EVAL)


@pytest.fixture(scope="session")
def ort_int8(fp32, calibration, eval_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("ort") / "int8"
    config = GateConfig(max_map_drop=3.0, threads=2)
    return build_int8(
        fp32,
        out,
        "onnxruntime",
        [Fold(calibration, eval_set)],
        config,
        BuildOptions(strategies=(NAIVE, MIXED_STEM), latency_runs=10),
        log=lambda _m: None,
    )


@pytest.fixture(scope="session")
def ov_int8(fp32, calibration, eval_set, tmp_path_factory):
    pytest.importorskip("nncf")
    out = tmp_path_factory.mktemp("ov") / "int8"
    return build_int8(
        fp32,
        out,
        "openvino",
        [Fold(calibration, eval_set)],
        GateConfig(threads=2),
        BuildOptions(latency_runs=10),
        log=lambda _m: None,
    )


def test_evaluation_never_uses_calibration_images(calibration, eval_set) -> None:
    from edgetally.converters.accuracy.calibration import file_sha256

    assert len(eval_set) == EVAL
    assert not {file_sha256(i.path) for i in eval_set} & set(calibration.sha256)


def test_ort_gate_rejects_naive_and_keeps_the_repair(ort_int8) -> None:
    artifact, report = ort_int8
    attempts = report["attempts"]
    assert [a["strategy"]["name"] for a in attempts] == ["naive", "tail-float+float-stem"]
    assert attempts[0]["passed"] is False and attempts[0]["metrics"]["map50_95_drop_points"] > 10
    assert report["passed"] and report["strategy"]["name"] == "tail-float+float-stem"
    assert report["accuracy"]["map50_95_drop_points"] <= 3.0
    cost = report["float_layers_cost"]  # the float stem timed against the all-INT8 first rung
    assert (
        cost["compared_with"] == "naive" and cost["ratio_1_thread"] > 0 and "latency at 1 thread" in cost["statement"]
    )
    m = artifact.manifest
    assert (m.format, m.runtime, m.precision, m.model_file) == ("onnx", "onnxruntime", "int8", "model.int8.onnx")
    assert report["sizes"]["ratio"] <= 0.5
    # The conv reading the image (Focus's) gets 7-bit weights when it is INT8: no 16-bit overflow in onnxruntime's
    # kernels for x86 CPUs without VNNI, whichever CPU converts. The shipped rung keeps it float: 8 bits elsewhere.
    assert len(attempts[0]["build"]["weights_7bit"]) == 1 and attempts[-1]["build"]["weights_7bit"] == []
    assert _weight_bound(artifact.model_path) == 127 and not any("7 bits" in note for note in m.notes)


def test_the_gate_reports_each_image_with_its_mirror_and_decides_on_the_images(ort_int8, fp32, eval_set) -> None:
    artifact, _ = ort_int8
    tight = GateConfig(max_map_drop=-50.0)  # refuses: the reason then carries every figure
    both = judge(evaluate_reference(fp32, eval_set, tight), artifact, eval_set, tight)
    unmirrored = GateConfig(max_map_drop=-50.0, mirror_views=False)
    alone = judge(evaluate_reference(fp32, eval_set, unmirrored), artifact, eval_set, unmirrored)
    mirrored = {"map50_95_drop_points_with_mirrors", "map50_95_drop_ci95_points_with_mirrors"}
    assert {k: v for k, v in both.metrics.items() if k not in mirrored} == alone.metrics  # the images decide, as before
    head, shares = alone.reason.split("; largest class shares")  # refused: the reason names the classes that lost
    assert both.reason.startswith(head) and both.reason.endswith("; largest class shares" + shares)
    assert "; with their mirrors " in both.reason
    m = both.metrics
    assert abs(m["map50_95_drop_points_with_mirrors"] - m["map50_95_drop_points"]) > 0.01  # the mirrors weigh in
    lo, hi = m["map50_95_drop_ci95_points_with_mirrors"]
    assert lo < hi
    assert both.mirrored is not None and both.mirrored.candidate.num_images == 2 * EVAL and alone.mirrored is None


def _weight_bound(model_path: Path) -> int:
    """The largest |int8 weight| of any quantised Conv in a QDQ model."""
    import onnx

    model = onnx.load(str(model_path))
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    dequantizers = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    convs = [n.input[1] for n in model.graph.node if n.op_type == "Conv" and n.input[1] in dequantizers]
    assert convs, "no quantised Conv"
    return max(int(np.abs(weights[dequantizers[w]].astype(np.int32)).max()) for w in convs)


def test_bench_compares_the_artifact_with_the_fp32_it_replaces(ort_int8, shared_data: Path) -> None:
    from edgetally.cli.bench import bench

    artifact, _ = ort_int8
    result = CliRunner().invoke(
        bench,
        [
            "--model",
            str(artifact.directory),
            "--source",
            str(shared_data / "videos" / "traffic_road.mp4"),
            "--max-frames",
            "8",
            "--threads",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    compared = json.loads(result.output.strip().splitlines()[-1])["vs_fp32"]
    assert compared["baseline"] == "FP32 reference on onnxruntime" and compared["ratio"] > 0
    assert compared["statement"].startswith(f"INT8 {compared['ratio']:.2f}x FP32 reference on onnxruntime: ")
    assert compared["cpu"] == describe_cpu()  # which CPU the ratio holds for


def test_a_slower_int8_model_gives_way_to_fp32_and_stays_beside_it(ort_int8, tmp_path: Path) -> None:
    from edgetally.converters.build import fp32_instead
    from edgetally.converters.targets import TARGETS

    artifact, _ = ort_int8
    shipped = fp32_instead(TARGETS["onnxruntime"], Artifact.load(artifact.directory / "reference"), artifact, tmp_path)
    m = shipped.manifest
    assert (m.precision, m.model_file, m.runtime) == ("fp32", "model.fp32.onnx", "onnxruntime")
    assert (shipped.directory / "model.int8.onnx").is_file() and "ran slower than FP32" in m.notes[0]


def test_ort_artifact_is_qdq_per_channel_opset13(ort_int8) -> None:
    import onnx

    artifact, _ = ort_int8
    model = onnx.load(str(artifact.model_path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # per-channel weights: some DequantizeLinear has a 1-D scale longer than 1
    inits = {i.name: i for i in model.graph.initializer}
    scales = [inits[n.input[1]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[1] in inits]
    assert any(len(s.dims) == 1 and s.dims[0] > 1 for s in scales)
    # the decode tail stayed float: the graph output comes straight from a float Transpose
    producer = next(n for n in model.graph.node if "output" in n.output)
    assert producer.op_type == "Transpose"


def test_openvino_passes_the_real_budget(ov_int8) -> None:
    artifact, report = ov_int8
    assert report["passed"] and report["accuracy"]["map50_95_drop_points"] <= 1.0
    assert artifact.manifest.format == "openvino" and (artifact.directory / "model.int8.bin").is_file()
    assert report["sizes"]["ratio"] <= 0.5


def test_report_has_everything(ov_int8) -> None:
    artifact, _ = ov_int8
    report = json.loads((artifact.directory / "report.json").read_text())
    assert report["calibration"]["count"] == CALIB and len(report["calibration"]["sha256"]) == CALIB
    latency = report["latency"]
    assert {r["threads"] for r in latency["fp32"]} == {1, 2}
    # OpenVINO INT8 is timed beside ORT FP32 and OpenVINO's own FP32 (f32 hint), interleaved
    for rows in (latency["candidate"], latency["runtime_fp32"]):
        assert [r["threads"] for r in rows] == [1, 2] and all(
            r["p50_ms"] > 0 and r["p95_ms"] >= r["p50_ms"] for r in rows
        )
    assert latency["ratio_1_thread"] > 0 and latency["ratio_1_thread_vs_runtime_fp32"] > 0
    assert latency["cpu"] == describe_cpu()
    assert f"  timed on {latency['cpu']['summary']}" in summary(artifact, report).splitlines()
    assert "person" in report["accuracy"]["per_class_drop_points"]
    assert {"onnxruntime", "openvino", "nncf"} <= set(report["tools"])
    assert Artifact.load(artifact.directory / "reference").manifest.precision == "fp32"
    # YOLOX-nano's Focus stem went into one stride-2 conv before NNCF (exact; edgetally.converters.graph.focus_fold)
    assert all(a["build"]["focus_folded"] for a in report["attempts"])


def test_openvino_int8_keeps_depthwise_convolutions_float(ov_int8) -> None:
    """NNCF quantises the 1x1 and full convolutions but leaves every depthwise (grouped) one float: their INT8
    kernels were never faster (about 10 % slower on a CPU with AMX; edgetally.converters.targets.openvino)."""
    import openvino as ov

    artifact, report = ov_int8
    model = ov.Core().read_model(str(artifact.model_path))

    def quantised_input(op) -> bool:
        return op.input_value(0).get_node().get_type_name() == "FakeQuantize"

    grouped = [op for op in model.get_ops() if op.get_type_name() == "GroupConvolution"]
    plain = [op for op in model.get_ops() if op.get_type_name() == "Convolution"]
    assert len(grouped) >= 10 and not any(quantised_input(op) for op in grouped)
    assert sum(quantised_input(op) for op in plain) > len(plain) / 2
    assert all(a["build"]["op_types_float"] == ["GroupConvolution"] for a in report["attempts"])
    assert "GroupConvolution kept float" in artifact.manifest.notes[0]


def test_bench_on_the_board_compares_with_the_fp32_ir_that_fallback_would_ship(ov_int8) -> None:
    """The converter keeps OpenVINO's own FP32 build under reference/openvino/ (Focus stem folded, as the report
    timed it); `edge bench` on the board times the INT8 model against it, not the unfolded reference ONNX."""
    import openvino as ov

    from edgetally.latency import compare_with_fp32, fp32_baseline

    artifact, report = ov_int8
    baseline, described = fp32_baseline(artifact)
    assert described == "FP32 build on openvino (reference/openvino/)"
    m = baseline.manifest
    assert (m.runtime, m.format, m.precision, m.model_file) == ("openvino", "openvino", "fp32", "model.fp32.xml")
    ops = {op.get_type_name() for op in ov.Core().read_model(str(baseline.model_path)).get_ops()}
    assert "StridedSlice" not in ops and "Slice" not in ops  # one strided conv, not Focus's 8 slices
    compared = compare_with_fp32(artifact, threads=1, runs=5)
    assert compared["baseline"] == described and compared["ratio"] > 0
    assert compared["statement"].startswith(f"INT8 {compared['ratio']:.2f}x FP32 build on openvino")
    if compared["ratio"] > 1.03:
        assert compared["statement"].endswith("ship the FP32 build instead (reference/openvino/)")


def test_verify_accepts_the_good_artifact_with_and_without_labels(ov_int8, coco: Path) -> None:
    artifact, _ = ov_int8
    for labels in (["--eval-labels", str(coco / "labels")], []):
        result = CliRunner().invoke(
            verify_command, [str(artifact.directory), "--eval-images", str(coco / "images"), "--limit", "24", *labels]
        )
        assert result.exit_code == 0, result.output
        assert "PASS" in result.output


def test_known_bad_tflite_is_rejected_with_a_reason(fp32, shared_data: Path, coco: Path, tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    from edgetally.converters.targets.tflite_wrap import wrap_tflite

    bad = wrap_tflite(shared_data / "models" / "yolox_nano_full_int8_known_bad.tflite", fp32, tmp_path / "bad")
    args = [
        str(bad.directory),
        "--eval-images",
        str(coco / "images"),
        "--eval-labels",
        str(coco / "labels"),
        "--reference",
        str(fp32.directory),
        "--limit",
        "24",
    ]
    result = CliRunner().invoke(verify_command, args)
    assert isinstance(result.exception, ConversionError) and result.exception.exit_code == 1
    message = str(result.exception)
    assert "REJECTED" in message and "drop" in message and "boxes or scores are broken" in message


@pytest.mark.parametrize("runtime", ["openvino", "litert"])
def test_parity_fp32_builds_detect_the_same(fp32, shared_data: Path, tmp_path: Path, runtime: str) -> None:
    """The same frame through FP32 ONNX (ORT) and the runtime's float build gives the same detections."""
    from edgetally.converters.accuracy.evaluate import EvalImage, detect_all
    from edgetally.converters.derive import derive

    if runtime == "openvino":
        pytest.importorskip("openvino")
        from edgetally.converters.targets.openvino import convert_fp32

        (tmp_path / "ov").mkdir()
        convert_fp32(fp32.model_path, tmp_path / "ov" / "model.xml")
        other = derive(fp32, tmp_path / "ov", "model.xml", format="openvino", runtime="openvino", precision="fp32")
    else:  # LiteRT's float build: the float16-weight reference TFLite (computes in float32)
        pytest.importorskip("ai_edge_litert")
        from edgetally.converters.targets.tflite_wrap import wrap_tflite

        other = wrap_tflite(
            shared_data / "models" / "yolox_nano_float16_reference.tflite", fp32, tmp_path / "tfl", "fp16"
        )
    frame = [EvalImage(Path("dog.jpg"), cv2.imread(str(shared_data / "models" / "dog.jpg")), None)]
    ref = detect_all(fp32, frame, score_threshold=0.5)[0]
    got = detect_all(other, frame, score_threshold=0.5)[0]
    assert sorted(ref.class_ids.tolist()) == sorted(got.class_ids.tolist()) == [1, 2, 16]  # bicycle, car, dog
    order_r, order_g = np.argsort(ref.class_ids), np.argsort(got.class_ids)
    np.testing.assert_allclose(got.xyxy[order_g], ref.xyxy[order_r], atol=2.0)
    np.testing.assert_allclose(got.scores[order_g], ref.scores[order_r], atol=0.02)


def test_cli_int8_needs_calibration(shared_data: Path, tmp_path: Path) -> None:
    args = [
        str(shared_data / "models" / "yolox_nano.onnx"),
        "--precision",
        "int8",
        "--decoder",
        "yolox",
        "--input-size",
        "416",
        "--out",
        str(tmp_path / "o"),
    ]
    result = CliRunner().invoke(convert, args)
    assert isinstance(result.exception, UsageError) and "--calib is required" in str(result.exception)


def test_integer_io_profiles_need_tflite(tmp_path: Path) -> None:
    """Coral's uint8 I/O goes to the full-integer TFLite path; integer I/O on another runtime is refused."""
    from edgetally.converters.convert import resolve_target
    from edgetally.profiles import get_profile

    assert resolve_target(get_profile("coral-edgetpu")).name == "litert-full-integer"
    body = (PROFILES_DIR / "generic-onnxruntime.yaml").read_text().replace("name: generic-onnxruntime", "name: odd")
    (tmp_path / "odd.yaml").write_text(body + "\nio_dtype: uint8\n")
    with pytest.raises(ConversionError, match="io_dtype uint8 .* is implemented for runtime.s. litert only"):
        resolve_target(get_profile(str(tmp_path / "odd.yaml")))


def test_tensorrt_artifact_carries_qdq_fp16_and_trtexec(
    fp32, calibration, eval_set, shared_data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxconverter_common")
    import onnx

    artifact, report = build_int8(
        fp32,
        tmp_path / "trt",
        "tensorrt",
        [Fold(calibration, eval_set)],
        GateConfig(max_map_drop=10.0),
        BuildOptions(strategies=(MIXED_STEM,), profile="jetson-orin-nano-jp6", latency_runs=3),
        log=lambda _m: None,
    )
    m = artifact.manifest
    assert (m.format, m.runtime, m.precision, m.profile) == (
        "onnx-tensorrt",
        "tensorrt",
        "int8",
        "jetson-orin-nano-jp6",
    )
    script = (artifact.directory / "build_engine.sh").read_text()
    assert "trtexec --onnx=model.int8.onnx --int8 --fp16" in script and "--onnx=model.fp16.onnx --fp16" in script
    assert any("trtexec" in n for n in m.notes)
    # the FP16 ONNX (float32 I/O) rides along, judged against FP32 like the INT8 one
    fp16 = report["tensorrt"]["fp16"]
    assert fp16["passed"] and fp16["metrics"]["map50_95_drop_points"] <= 1.0
    fp16_model = onnx.load(str(artifact.directory / "model.fp16.onnx"))
    assert fp16_model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in fp16_model.graph.initializer)
    # TensorRT explicit quantisation: activations symmetric S8 (zero point 0)
    model = onnx.load(str(artifact.model_path))
    inits = {i.name: i for i in model.graph.initializer}
    zero_points = [
        onnx.numpy_helper.to_array(inits[n.input[2]])
        for n in model.graph.node
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits
    ]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    assert _weight_bound(artifact.model_path) == 127  # 32-bit accumulation on the GPU: the full 8 bits
    assert not any("7 bits" in note for note in m.notes)
    assert report["passed"] and report["tensorrt"]["build_script"] == "build_engine.sh"
    # The runner's tensorrt runtime takes this artifact as it is: engine built from model.int8.onnx (INT8+FP16
    # flags) on first start and cached; TensorRT itself is faked here (no GPU), the runtime's contract is real.
    from edgetally.postprocess import build_decoder
    from edgetally.preprocess import Preprocessor
    from edgetally.runtimes.tensorrt import EngineCache, TensorRtRuntime
    from tests.trt_fake import FakeBackend

    backend = FakeBackend()
    runtime = TensorRtRuntime(Artifact.load(artifact.directory), backend, EngineCache(tmp_path / "engines"))
    assert backend.builds[0][0].flags == ("INT8", "FP16")
    tensor, letterbox = Preprocessor(m.input)(cv2.imread(str(shared_data / "models" / "dog.jpg")))
    detections = build_decoder(m, score_threshold=0.5)(runtime.infer(tensor), letterbox)
    assert sorted(detections.class_ids.tolist()) == [1, 2, 16]  # bicycle, car, dog, as FP32 sees them
    from edgetally.latency import fp32_baseline

    baseline, described = fp32_baseline(artifact)  # what `edge bench` times it against on the Jetson
    assert described == "FP16 engine (model.fp16.onnx)" and baseline.manifest.precision == "fp16"


def test_fallback_ships_fp32_when_no_int8_strategy_passes(fp32, calibration, eval_set, tmp_path: Path) -> None:
    """An impossible budget (the model must *gain* 100 points): nothing passes, --fallback ships FP32."""
    config = GateConfig(max_map_drop=-100.0)
    artifact, report = build_int8(
        fp32,
        tmp_path / "fb",
        "onnxruntime",
        [Fold(calibration.subset(8), eval_set)],
        config,
        BuildOptions(strategies=(TAIL_FLOAT,), fallback=True, latency_runs=3),
        log=lambda _m: None,
    )
    m = artifact.manifest
    assert (m.precision, m.model_file, m.runtime) == ("fp32", "model.fp32.onnx", "onnxruntime")
    assert any("FP32 fallback" in n for n in m.notes)
    assert report["passed"] is False and report["fallback"] is True and report["strategy"] is None
    assert [a["passed"] for a in report["attempts"]] == [False]
    assert "budget -100.0" in report["attempts"][0]["reason"]
    assert "source" not in report["attempts"][0] and "quantised_model" not in report  # one candidate only
    # what was refused, timed: the closest INT8 attempt against ORT FP32 at 1 and 2 threads, and its size
    closest = report["closest"]
    assert closest["strategy"] == TAIL_FLOAT.name and "budget -100.0" in closest["reason"]
    assert [row["threads"] for row in closest["latency"]["candidate"]] == [1, 2]
    assert "ORT FP32" in closest["speed"]["statement"]
    assert 0.2 < closest["sizes"]["ratio"] < 0.5  # INT8 weights: about a quarter of FP32's bytes
    assert f"refused INT8 ({TAIL_FLOAT.name})" in summary(artifact, report)
    assert json.loads((artifact.directory / "report.json").read_text())["fallback"] is True
    assert Artifact.load(artifact.directory).model_path.read_bytes() == fp32.model_path.read_bytes()


def test_refusal_names_the_closest_attempt_and_its_speed(fp32, calibration, eval_set, tmp_path: Path) -> None:
    """Without --fallback nothing ships; the error and report.json still say how close INT8 came and
    how fast it would have run, so "inaccurate" and "not faster anyway" can be told apart."""
    with pytest.raises(ConversionError, match=rf"best: {TAIL_FLOAT.name}: .*timed anyway: INT8 \d\.\d\dx ORT FP32"):
        build_int8(
            fp32,
            tmp_path / "refused",
            "onnxruntime",
            [Fold(calibration.subset(8), eval_set)],
            GateConfig(max_map_drop=-100.0),
            BuildOptions(strategies=(TAIL_FLOAT,), latency_runs=3),
            log=lambda _m: None,
        )
    report = json.loads((tmp_path / "refused" / "report.json").read_text())
    assert report["passed"] is False and report["closest"]["strategy"] == TAIL_FLOAT.name
    assert "latency" not in report  # nothing shipped, nothing timed as shipped


@pytest.fixture(scope="session")
def small_eval(coco: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 labelled COCO images (links, not copies): enough for the CLI's 16-image minimum, CI-sized."""
    root = tmp_path_factory.mktemp("small_eval")
    for sub in ("images", "labels"):
        (root / sub).mkdir()
    for image in sorted((coco / "images").glob("*.jpg"))[-20:]:
        (root / "images" / image.name).symlink_to(image)
        label = coco / "labels" / f"{image.stem}.txt"
        if label.is_file():
            (root / "labels" / label.name).symlink_to(label)
    return root


def _fp16_cli(shared_data: Path, small_eval: Path, out: Path, *extra: str):
    args = [
        str(shared_data / "models" / "yolox_nano.onnx"),
        "--precision",
        "fp16",
        "--decoder",
        "yolox",
        "--input-size",
        "416",
        "--out",
        str(out),
        "--eval-images",
        str(small_eval / "images"),
        "--eval-labels",
        str(small_eval / "labels"),
        "--latency-runs",
        "3",
        *extra,
    ]
    return CliRunner().invoke(convert, args)


def test_cli_fp16_onnx_passes_the_gate(shared_data: Path, small_eval: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxconverter_common")
    import onnx

    result = _fp16_cli(shared_data, small_eval, tmp_path / "fp16")
    assert result.exit_code == 0, result.output
    artifact = Artifact.load(tmp_path / "fp16")
    m = artifact.manifest
    assert (m.precision, m.model_file, m.runtime, m.format) == ("fp16", "model.fp16.onnx", "onnxruntime", "onnx")
    report = json.loads((tmp_path / "fp16" / "report.json").read_text())
    assert report["passed"] and report["strategy"]["name"] == "fp16" and report["calibration"] is None
    assert abs(report["accuracy"]["map50_95_drop_points"]) <= 0.3  # FP16 is near-lossless on YOLOX-nano
    assert 0.45 <= report["sizes"]["ratio"] <= 0.55
    model = onnx.load(str(artifact.model_path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # runner feeds float32


def test_cli_fp16_fails_loudly_with_report_and_falls_back_when_asked(
    shared_data: Path, small_eval: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxconverter_common")
    result = _fp16_cli(shared_data, small_eval, tmp_path / "strict", "--max-map-drop", "-100")
    assert isinstance(result.exception, ConversionError) and result.exception.exit_code == 1
    assert "FP16 failed the accuracy gate" in str(result.exception)
    assert json.loads((tmp_path / "strict" / "report.json").read_text())["passed"] is False
    assert not (tmp_path / "strict" / "manifest.json").exists()  # nothing runnable shipped
    result = _fp16_cli(shared_data, small_eval, tmp_path / "fb", "--max-map-drop", "-100", "--fallback")
    assert result.exit_code == 0, result.output
    assert Artifact.load(tmp_path / "fb").manifest.precision == "fp32"


def test_openvino_fp16_ir(fp32, eval_set, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    artifact, report = build_int8(
        fp32,
        tmp_path / "ovfp16",
        "openvino",
        [Fold(None, eval_set)],
        GateConfig(),
        BuildOptions(latency_runs=3, precision="fp16"),
        log=lambda _m: None,
    )
    m = artifact.manifest
    assert (m.precision, m.model_file, m.runtime) == ("fp16", "model.fp16.xml", "openvino")
    # passes the real budget (on this CPU OpenVINO computes it in bf16: +-1.5 points of noise on 32 images)
    assert report["passed"] and report["accuracy"]["map50_95_drop_points"] <= 1.0
    assert report["sizes"]["ratio"] <= 0.65 and "runtime_fp32" in report["latency"]  # xml + a few f32 constants


@pytest.mark.parametrize(
    ("profile", "message"),
    [("jetson-orin-nano-jp6", "already carries model.fp16.onnx"), ("coral-edgetpu", "FP16 TFLite is not implemented")],
)
def test_cli_fp16_refuses_what_it_does_not_build(
    shared_data: Path, small_eval: Path, tmp_path: Path, profile: str, message: str
) -> None:
    result = _fp16_cli(shared_data, small_eval, tmp_path / "o", "--profile", profile)
    assert isinstance(result.exception, (UsageError, ConversionError)) and message in str(result.exception)


@pytest.fixture(scope="session")
def coco40(coco: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 labelled COCO images (links): two folds of 20 evaluation images, CI-sized."""
    root = tmp_path_factory.mktemp("coco40")
    for sub in ("images", "labels"):
        (root / sub).mkdir()
    for image in sorted((coco / "images").glob("*.jpg"))[:40]:
        (root / "images" / image.name).symlink_to(image)
        label = coco / "labels" / f"{image.stem}.txt"
        if label.is_file():
            (root / "labels" / label.name).symlink_to(label)
    return root


def test_two_folds_both_judge_and_the_worst_decides(fp32, coco40: Path, tmp_path: Path) -> None:
    from edgetally.converters.accuracy.folds import SplitRequest, plan_folds

    folds, info = plan_folds(SplitRequest(coco40 / "images", 12, 2, eval_labels=coco40 / "labels"), fp32.manifest.input)
    artifact, report = build_int8(
        fp32,
        tmp_path / "kf",
        "onnxruntime",
        folds,
        GateConfig(max_map_drop=3.0),
        BuildOptions(strategies=(MIXED_STEM,), latency_runs=0, eval_info=info),
        log=lambda _m: None,
    )
    attempt = report["attempts"][0]
    assert [f["name"] for f in attempt["folds"]] == ["fold 1/2", "fold 2/2"] and report["gate"]["folds"] == 2
    drops = report["accuracy"]["folds"]["map50_95_drop_points"]
    assert len(drops["per_fold"]) == 2 and drops["worst"] == max(drops["per_fold"]) <= 3.0
    assert drops["spread"] == pytest.approx(abs(drops["per_fold"][0] - drops["per_fold"][1]), abs=1e-3)
    # each fold's drop comes with its bootstrap interval over that fold's 20 images
    assert [lo < hi for lo, hi in drops["ci95_per_fold"]] == [True, True]
    assert report["accuracy"]["map50_95_drop_ci95_points"] == drops["ci95_per_fold"][0]
    # the two folds judged disjoint images: pooled, every image judged by the model that never calibrated on it
    pooled = report["accuracy"]["folds"]["pooled"]
    assert (pooled["folds"], pooled["images"]) == (2, 40) and pooled["ci95_points"][0] < pooled["ci95_points"][1]
    assert min(drops["per_fold"]) - 1.0 < pooled["map50_95_drop_points"] < max(drops["per_fold"]) + 1.0
    assert "  mAP50-95 drop over the 40 images of 2 folds pooled: " in summary(artifact, report)
    assert "with their mirrors" in summary(artifact, report) and "with_mirrors" in pooled
    assert report["evaluation"]["per_fold"][1]["images"] == 20 and report["calibration"]["count"] == 12
    assert report["float_layers"][:3] == ["Conv_41", "Conv_44", "Conv_47"]  # the float stem, then the tail


def test_a_refusal_says_what_the_folds_pooled_give(fp32, coco40: Path, tmp_path: Path) -> None:
    """Judged in the other order (this split: fold 2 drops less than fold 1) with a budget between the
    two: the first fold passes, the second refuses, and the error gives the pooled figure beside it."""
    from edgetally.converters.accuracy.folds import SplitRequest, plan_folds

    folds, info = plan_folds(SplitRequest(coco40 / "images", 12, 2, eval_labels=coco40 / "labels"), fp32.manifest.input)
    with pytest.raises(ConversionError) as refused:
        build_int8(
            fp32,
            tmp_path / "kf",
            "onnxruntime",
            folds[::-1],
            GateConfig(max_map_drop=0.5),
            BuildOptions(strategies=(MIXED_STEM,), latency_runs=0, eval_info=info),
            log=lambda _m: None,
        )
    report = json.loads((tmp_path / "kf" / "report.json").read_text())
    assert [f["passed"] for f in report["attempts"][0]["folds"]] == [True, False]
    pooled = report["accuracy"]["folds"]["pooled"]
    assert (pooled["folds"], pooled["images"]) == (2, 40)
    assert (
        f"over the 40 images of its 2 folds pooled: drop {pooled['map50_95_drop_points']:.2f} points "
        f"(95 % interval {pooled['ci95_points'][0]:.2f} to {pooled['ci95_points'][1]:.2f})"
    ) in str(refused.value)
    # ... and which classes lost most of the refusing fold's drop, with their objects
    shares = report["attempts"][0]["folds"][1]["metrics"]["map50_95_drop_largest_class_shares"]
    assert shares and shares[0]["points"] > 0 and shares[0]["objects"] >= 1
    first = shares[0]
    assert f"largest class shares: {first['class']} {first['points']:.2f} ({first['objects']} object" in str(
        refused.value
    )


def _wrecked(fp32: Artifact, directory: Path) -> Artifact:
    """``fp32`` with its first convolution's weights negated: it finds nothing, in float or in INT8."""
    import onnx
    from onnx import numpy_helper

    from edgetally.converters.derive import derive

    model = onnx.load(str(fp32.model_path))
    conv = next(node for node in model.graph.node if node.op_type == "Conv")
    weights = next(init for init in model.graph.initializer if init.name == conv.input[1])
    weights.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(weights), weights.name))
    directory.mkdir(parents=True)
    onnx.save(model, str(directory / "model.fp32.onnx"))
    return derive(
        fp32, directory, "model.fp32.onnx", format="onnx", runtime="onnxruntime", precision="fp32", notes=["wrecked"]
    )


@pytest.mark.parametrize(
    ("alternative", "ships"),
    [
        ("original", "original"),  # the ladder fails on the wrecked model, passes on the next candidate
        ("wrecked too", None),  # every candidate fails: refused, and the report lists both
    ],
)
def test_a_second_candidate_is_gated_when_no_rung_passes_on_the_first(
    fp32, calibration, eval_set, tmp_path: Path, alternative: str, ships: str | None
) -> None:
    """How `--activation` offers the refit student when the distilled one fails: same ladder, same folds."""
    wrecked = _wrecked(fp32, tmp_path / "wrecked")
    candidate = fp32 if alternative == "original" else _wrecked(fp32, tmp_path / "wrecked-too")
    options = BuildOptions(
        strategies=(MIXED_STEM,),
        latency_runs=0,
        source=wrecked,
        source_label="wrecked",
        alternatives=[(alternative, candidate)],
    )
    run = lambda: build_int8(  # noqa: E731
        fp32,
        tmp_path / "out",
        "onnxruntime",
        [Fold(calibration.subset(8), eval_set)],
        GateConfig(max_map_drop=5.0),
        options,
        log=lambda _m: None,
    )
    if ships is None:
        with pytest.raises(ConversionError, match="failed the accuracy gate after 2 attempts"):
            run()
        report = json.loads((tmp_path / "out" / "report.json").read_text())
    else:
        artifact, report = run()
        assert artifact.manifest.precision == "int8"
    assert [(a["source"], a["passed"]) for a in report["attempts"]] == [("wrecked", False), (alternative, bool(ships))]
    assert report["attempts"][0]["metrics"]["map50_95_drop_points"] > 5.0
    assert report.get("quantised_model") == ships

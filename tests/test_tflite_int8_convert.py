"""Full-integer INT8 TFLite conversion (onnx2torch -> baked constants -> litert-torch PT2E).

Needs the ``convert-tflite`` extra (litert-torch, onnx2torch; torch==2.13.0 installed first):
skipped with that reason when it is missing. Kept CI-sized with a tiny model that has the ops
YOLO exports rely on (strided Slice, Reshape, Resize, Concat, Sigmoid); the YOLOX-nano figures
and the accuracy gate at the 1.0-point budget come from benchmarks/convert_bench.py --targets litert.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from edgetally.converters.targets.tflite import missing_packages  # noqa: E402

pytestmark = pytest.mark.skipif(
    bool(missing_packages()),
    reason=f"TFLite INT8 conversion needs the convert-tflite extra (missing: {', '.join(missing_packages())})",
)

SIZE = 32


class _YoloOps(torch.nn.Module):
    """Focus-style strided slices, a conv, nearest resize, reshape + concat + sigmoid tail."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(12, 8, 3, 2, 1)
        self.head = torch.nn.Conv2d(16, 6, 1)

    def forward(self, x):
        focus = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], dim=1)
        y = torch.relu(self.conv(focus / 255.0))
        up = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="nearest")
        z = self.head(torch.cat([up, focus[:, :8]], dim=1))
        flat = z.reshape(1, 6, -1).permute(0, 2, 1)
        return torch.cat([flat[..., :2], torch.sigmoid(flat[..., 2:])], dim=2)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = _YoloOps().eval()
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    torch.onnx.export(
        model,
        (torch.rand(1, 3, SIZE, SIZE) * 255,),
        str(path),
        dynamo=False,
        opset_version=13,
        input_names=["images"],
        output_names=["output"],
    )
    return path


def _calibration(count: int = 16):
    from edgetally.converters.accuracy.calibration import CalibrationSet

    rng = np.random.default_rng(0)
    tensors = rng.uniform(0, 255, (count, 3, SIZE, SIZE)).astype(np.float32)
    names = tuple(f"random{i}" for i in range(count))
    return CalibrationSet(tensors, names, names, "random")


def _onnx(path: Path, tensor: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": tensor})[0]


def test_baked_torch_module_computes_what_the_onnx_computes(tiny_onnx: Path) -> None:
    from edgetally.converters.targets.tflite import load_onnx_as_torch

    module, names, _proto = load_onnx_as_torch(tiny_onnx)
    kinds = {type(m).__name__ for _, m in module.named_children()}
    assert {"StaticSlice", "StaticReshape"} <= kinds  # constants baked, torch.export can trace it
    tensor = _calibration(1).tensors
    with torch.no_grad():
        got = module(torch.from_numpy(tensor)).numpy()
    np.testing.assert_allclose(got, _onnx(tiny_onnx, tensor), rtol=1e-5, atol=1e-5)
    exported = torch.export.export(module, (torch.from_numpy(tensor),))
    assert exported.module()(torch.from_numpy(tensor)).shape == got.shape


@pytest.fixture(scope="module")
def fp32_tflite(tiny_onnx: Path) -> Path:
    from edgetally.converters.targets.tflite import onnx_to_fp32_tflite

    path = tiny_onnx.parent / "fp32.tflite"
    info = onnx_to_fp32_tflite(tiny_onnx, path, _calibration(1).tensors)
    assert info["fp32_tflite_seconds"] > 0
    return path


def _run_tflite(path: Path, tensor: np.ndarray) -> np.ndarray:
    from edgetally.runtimes.litert import _interpreter_class

    interpreter = _interpreter_class()(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    scale, zero = inp["quantization"]
    if inp["dtype"] != np.float32:  # what edgetally.preprocess does from the manifest
        tensor = np.clip(np.round(tensor / scale + zero), -128, 127).astype(inp["dtype"])
    interpreter.set_tensor(inp["index"], tensor)
    interpreter.invoke()
    return interpreter.get_tensor(outp["index"])


def test_fp32_tflite_computes_what_the_onnx_computes(tiny_onnx: Path, fp32_tflite: Path) -> None:
    tensor = _calibration(1).tensors
    np.testing.assert_allclose(_run_tflite(fp32_tflite, tensor), _onnx(tiny_onnx, tensor), rtol=1e-4, atol=1e-4)


def test_tail_float_strategy_names_the_decode_tail(fp32_tflite: Path) -> None:
    from edgetally.converters.accuracy.strategy import NAIVE, TAIL_FLOAT, Strategy
    from edgetally.converters.targets.tflite import TflGraph, float_ops

    graph = TflGraph(fp32_tflite)
    assert float_ops(graph, NAIVE) == []
    kinds = {op["op_name"] for op in graph.tail()}
    assert {"LOGISTIC", "CONCATENATION"} <= kinds and not kinds & {"CONV_2D", "DEPTHWISE_CONV_2D"}, kinds
    assert float_ops(graph, TAIL_FLOAT) == list(dict.fromkeys(graph.output_name(op) for op in graph.tail()))
    stem = graph.stem(1)
    assert stem[-1]["op_name"] in ("CONV_2D", "RELU") and sum(op["op_name"] == "CONV_2D" for op in stem) == 1
    assert set(float_ops(graph, Strategy("s", keep_tail_float=False, float_stem_convs=1))) == {
        graph.output_name(op) for op in stem
    }
    assert [op["op_name"] for op in graph.head_outputs()] == ["CONV_2D"]


def test_int8_tflite_keeps_the_tail_float_and_matches_fp32(tiny_onnx: Path, fp32_tflite: Path, tmp_path: Path) -> None:
    from edgetally.converters.accuracy.strategy import TAIL_FLOAT
    from edgetally.converters.targets.tflite import quantize_tflite
    from edgetally.runtimes.litert import _interpreter_class

    out = tmp_path / "model.int8.tflite"
    info = quantize_tflite(fp32_tflite, out, _calibration(), TAIL_FLOAT)
    assert info["calibration_images"] == 16 and info["ops_float"] > 0
    interpreter = _interpreter_class()(model_path=str(out))
    interpreter.allocate_tensors()
    convs = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    assert convs and all(details[int(op["inputs"][1])]["dtype"] == np.int8 for op in convs)  # integer kernels
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.int8 and outp["dtype"] == np.float32  # int8 input, float tail and output
    tensor = np.random.default_rng(5).uniform(0, 255, (1, 3, SIZE, SIZE)).astype(np.float32)
    got, expected = _run_tflite(out, tensor), _onnx(tiny_onnx, tensor)
    spread = float(expected.max() - expected.min())
    assert float(np.abs(got - expected).max()) < 0.05 * spread, (np.abs(got - expected).max(), spread)
    scores = got[..., 2:]
    assert scores.min() >= 0.0 and scores.max() <= 1.0 and len(np.unique(scores)) > 20  # not collapsed to a few levels

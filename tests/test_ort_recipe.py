"""The onnxruntime INT8 recipe's parts on a tiny model: MSE ranges, per-layer sensitivity, bias correction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("onnxruntime")

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.accuracy.strategy import Strategy
from edgetally.converters.graph.sensitivity import fake_quant_weight, layers, only_layer_quantised, rank_layers
from edgetally.converters.targets.onnxruntime import OrtFold
from edgetally.converters.targets.ort_ranges import mse_ranges, silu_inputs, tapped_session
from tests.tiny_models import images, run, tiny_detector


def _calibration(x: np.ndarray) -> CalibrationSet:
    names = tuple(f"i{k}" for k in range(len(x)))
    return CalibrationSet(x, names, names, "test")


def test_layers_are_weighted_ops_with_their_activation(tmp_path: Path) -> None:
    model = onnx.load(str(tiny_detector(tmp_path / "m.onnx")))
    found = {layer.name: layer.nodes for layer in layers(model)}
    assert found == {"conv1": ("conv1", "sig1", "silu1"), "conv2": ("conv2", "sig2", "silu2"), "head": ("head",)}
    assert silu_inputs(tmp_path / "m.onnx") == {"c1", "c2"}


def test_mse_ranges_clip_a_rare_spike_that_min_max_would_keep(tmp_path: Path) -> None:
    path = tiny_detector(tmp_path / "m.onnx", size=256)
    x = images(16, size=256)[:, None]
    x[3, 0, :, 100, 100] = 2000.0  # one pixel in 3 million values: min/max would stretch the scale 8x for it
    ranges = mse_ranges(path, list(x))
    low, high = ranges["images"]
    assert 0.0 <= low < 1.0 and 200.0 < high < 1000.0
    assert set(ranges) >= {"c1", "a1", "c2", "a2", "c3"}


def test_the_layer_with_a_wide_range_ranks_most_sensitive(tmp_path: Path) -> None:
    bias = np.zeros(8)
    bias[0] = -400.0  # one channel far below the others: one U8 scale for conv1's output crushes the other seven
    # (SiLU maps it to ~0, so only conv1's own tensors are wide, not what conv2 reads)
    path = tiny_detector(tmp_path / "m.onnx", first_bias=bias)
    x = [img[None] for img in images(6)]
    session, names = tapped_session(path)
    values = [dict(zip(names, session.run(names, {"images": b}), strict=True)) for b in x]
    ranges = {n: (min(float(v[n].min()) for v in values), max(float(v[n].max()) for v in values)) for n in names}
    ranked = rank_layers(path, ranges, x)
    assert ranked[0][0] == "conv1" and ranked[0][1] > 3 * ranked[1][1]
    single = only_layer_quantised(onnx.load(str(path)), layers(onnx.load(str(path)))[0], ranges)
    assert sum(n.op_type == "QuantizeLinear" for n in single.graph.node) == 4  # its input + conv, sigmoid, silu


def test_fold_keeps_the_sensitive_layers_float_and_reports_them(tmp_path: Path) -> None:
    bias = np.zeros(8)
    bias[0] = -400.0
    path = tiny_detector(tmp_path / "m.onnx", first_bias=bias)
    fold = OrtFold(path, _calibration(images(12)), "images", tmp_path / "work")
    info = fold.quantize(Strategy("s1", float_sensitive=1, activation_ranges="mse"), tmp_path / "q.onnx")
    assert info["sensitive_layers"] == ["conv1"] and info["float_layers"][0] == "conv1"
    assert info["float_layers"][-1].startswith("decode tail") and info["activation_ranges"] == "mse"
    model = onnx.load(str(tmp_path / "q.onnx"))
    conv1 = next(n for n in model.graph.node if n.name == "conv1")
    assert not any(i.endswith("DequantizeLinear_Output") for i in conv1.input[1:])  # float weights
    assert (tmp_path / "work" / "ort" / "sensitivity.json").is_file()  # ranked once per fold


def test_bias_correction_removes_the_drift_of_badly_rounding_weights(tmp_path: Path) -> None:
    weights = np.full((8, 3, 3, 3), 0.006)
    # scale 0.01/64 (7-bit weights): every 0.006 rounds to 38 steps (0.0059375), all the same way
    weights[:, 0, 0, 0] = 0.01
    path = tiny_detector(tmp_path / "m.onnx", first_weights=weights)
    x = images(16)
    calibration = _calibration(x)
    fold = OrtFold(path, calibration, "images", tmp_path / "work")
    plain = fold.quantize(Strategy("plain", activation_ranges="mse"), tmp_path / "plain.onnx")
    corrected = fold.quantize(Strategy("bc", activation_ranges="mse", bias_correction=True), tmp_path / "bc.onnx")
    assert "bias_corrected_convs" not in plain and corrected["bias_corrected_convs"] == 3
    reference = run(path, x)
    drift = lambda model: np.abs((run(model, x) - reference).mean(axis=(0, 1))).mean()  # noqa: E731
    assert drift(tmp_path / "bc.onnx") < drift(tmp_path / "plain.onnx")


def _dequantized_conv_weights(path: Path) -> dict[str, np.ndarray]:
    """conv name -> its weights as the INT8 QDQ model holds them (int8 values, then dequantised)."""
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    found = {}
    for node in model.graph.node:
        dq = producers.get(node.input[1]) if node.op_type == "Conv" else None
        if dq is not None and dq.op_type == "DequantizeLinear":
            q, scale = inits[dq.input[0]], inits[dq.input[1]]
            found[node.name] = (q, q.astype(np.float32) * scale.reshape(-1, 1, 1, 1))
    return found


@pytest.mark.parametrize(
    ("overflow_fix", "qmax"),
    [
        # the onnxruntime target: the conv reading the image on 7 bits, the rest on 8
        (True, {"conv1": 64, "conv2": 127, "head": 127}),
        (False, {"conv1": 127, "conv2": 127, "head": 127}),  # the TensorRT target (32-bit accumulation)
    ],
)
def test_weights_use_the_grid_the_sensitivity_ranking_assumed(
    tmp_path: Path, overflow_fix: bool, qmax: dict[str, int]
) -> None:
    path = tiny_detector(tmp_path / "m.onnx")
    fold = OrtFold(path, _calibration(images(8)), "images", tmp_path / "work", overflow_fix=overflow_fix)
    info = fold.quantize(Strategy("all", keep_tail_float=False), tmp_path / "q.onnx")
    assert info["weights_7bit"] == [name for name, q in qmax.items() if q == 64]
    model = onnx.load(str(path))
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    quantised = _dequantized_conv_weights(tmp_path / "q.onnx")
    assert {
        conv: int(np.abs(q).max()) for conv, (q, _) in quantised.items()
    } == qmax  # each channel's max on the grid's end
    for conv, (_, dequantized) in quantised.items():
        original = weights[next(n for n in model.graph.node if n.name == conv).input[1]]
        # what graph/sensitivity.py ranks a layer with is exactly what the INT8 model computes with
        assert np.allclose(fake_quant_weight(original, qmax[conv]), dequantized, rtol=1e-5, atol=1e-8)


def test_a_float_input_conv_needs_no_narrow_weights(tmp_path: Path) -> None:
    path = tiny_detector(tmp_path / "m.onnx")
    fold = OrtFold(path, _calibration(images(8)), "images", tmp_path / "work")
    info = fold.quantize(Strategy("stem", keep_tail_float=False, float_stem_convs=1), tmp_path / "q.onnx")
    assert info["weights_7bit"] == [] and set(_dequantized_conv_weights(tmp_path / "q.onnx")) == {"conv2", "head"}

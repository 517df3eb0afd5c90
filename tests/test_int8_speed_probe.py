"""benchmarks/int8_speed_probe.py: its SiLU rewrites do what its latency rows claim, on the real YOLOX-nano."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from benchmarks.int8_speed_probe import clamp_silu, rewrite_silu

SILU_COUNT = 104  # Sigmoid+Mul pairs in YOLOX-nano (6 more Sigmoids sit in the head, not in a SiLU)


def _run(path: Path, frame: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": frame})[0]


def _frame() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (1, 3, 416, 416)).astype(np.float32)


def test_quickgelu_rewrite_is_the_same_function(shared_data: Path, tmp_path: Path) -> None:
    """The 'SiLU as one float QuickGelu' row times the original model's function, fused."""
    source = shared_data / "models" / "yolox_nano.onnx"
    assert rewrite_silu(source, tmp_path / "qg.onnx", "QuickGelu") == SILU_COUNT
    frame = _frame()
    np.testing.assert_allclose(_run(tmp_path / "qg.onnx", frame), _run(source, frame), rtol=1e-4, atol=1e-3)


def test_relu_and_clamp_rewrites_change_the_model(shared_data: Path, tmp_path: Path) -> None:
    """Diagnostic rows are labelled as such because their outputs differ from the original."""
    source = shared_data / "models" / "yolox_nano.onnx"
    assert rewrite_silu(source, tmp_path / "relu.onnx", "Relu") == SILU_COUNT
    assert clamp_silu(source, tmp_path / "clamped.onnx") == SILU_COUNT
    frame = _frame()
    original = _run(source, frame)
    for name in ("relu.onnx", "clamped.onnx"):
        assert not np.allclose(_run(tmp_path / name, frame), original, atol=1e-3)


@pytest.mark.parametrize(("share", "replaced"), [(0.7, 38), (0.85, 76), (1.0, SILU_COUNT)])
def test_share_rewrites_replace_what_edge_convert_would(
    shared_data: Path, tmp_path: Path, share: float, replaced: int
) -> None:
    """The '--activation-share S' rows replace the SiLUs edge convert picks: whole resolution levels,
    largest maps first (0.7: the 208/104/52-pixel maps; 0.85 adds the 26-pixel ones)."""
    import onnx

    source = shared_data / "models" / "yolox_nano.onnx"
    assert rewrite_silu(source, tmp_path / "hs.onnx", "HardSwish", share) == replaced
    ops = [n.op_type for n in onnx.load(str(tmp_path / "hs.onnx")).graph.node]
    assert ops.count("HardSwish") == replaced


def test_depthwise_benchmark_times_each_variant_in_both_orders(shared_data: Path, tmp_path: Path) -> None:
    """benchmarks/openvino_depthwise.py: four IRs, each compiled twice and timed in both compile orders."""
    pytest.importorskip("nncf")
    import json

    from benchmarks.openvino_depthwise import main

    out = tmp_path / "depthwise.json"
    assert main(["--runs", "2", "--rounds", "1", "--calib-count", "8", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert sorted(rows) == sorted(
        f"{model}, depthwise {kind}"
        for model in ("SiLU model", "activation recipe")
        for kind in ("INT8", "float (shipped)")
    )
    for row in rows.values():
        assert len(row["ratio_vs_ort_fp32"]) == 4 and all(r > 0 for r in row["ratio_vs_ort_fp32"])
        assert min(row["ratio_vs_ort_fp32"]) <= row["median"] <= max(row["ratio_vs_ort_fp32"])

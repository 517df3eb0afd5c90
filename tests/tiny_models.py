"""Tiny ONNX detectors-in-shape for fast converter tests (seconds, not YOLOX minutes).

conv(3->8, 3x3) - SiLU - depthwise conv(8, 3x3) - SiLU - conv(8->6, 1x1) - reshape/transpose - sigmoid:
an output [1, N, 6] like a packed YOLO head (4 box values, objectness, one class).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_detector(
    path: Path,
    size: int = 32,
    seed: int = 0,
    first_weights: np.ndarray | None = None,
    first_bias: np.ndarray | None = None,
) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = first_weights if first_weights is not None else rng.normal(0, 0.02, (8, 3, 3, 3))
    b1 = first_bias if first_bias is not None else rng.normal(0, 0.5, 8)
    inits = [
        numpy_helper.from_array(np.asarray(a, np.float32), n)
        for a, n in (
            (w1, "w1"),
            (b1, "b1"),
            (rng.normal(0, 0.3, (8, 1, 3, 3)), "w2"),
            (rng.normal(0, 0.2, 8), "b2"),
            (rng.normal(0, 0.3, (6, 8, 1, 1)), "w3"),
            (rng.normal(0, 0.1, 6), "b3"),
        )
    ]
    inits.append(numpy_helper.from_array(np.array([1, 6, -1], np.int64), "shape"))
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig1"),
        helper.make_node("Mul", ["c1", "s1"], ["a1"], name="silu1"),
        helper.make_node("Conv", ["a1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="sig2"),
        helper.make_node("Mul", ["c2", "s2"], ["a2"], name="silu2"),
        helper.make_node("Conv", ["a2", "w3", "b3"], ["c3"], name="head"),
        helper.make_node("Reshape", ["c3", "shape"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["t"], name="transpose", perm=[0, 2, 1]),
        helper.make_node("Sigmoid", ["t"], ["output"], name="decode"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, size * size, 6])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def images(count: int, size: int = 32, seed: int = 1) -> np.ndarray:
    """(count, 3, size, size) float32 pixels 0-255, smooth enough for convolutions to mean something."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (count, 3, size // 4, size // 4))
    return np.repeat(np.repeat(base, 4, axis=2), 4, axis=3).astype(np.float32)


def run(path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"images": x[None]})[0] for x in batch])

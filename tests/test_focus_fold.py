"""A Focus (space-to-depth) stem and its convolution become one stride-2 convolution, exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgetally.converters.graph.focus_fold import fold_focus  # noqa: E402

END = 2**62
YOLOX_ORDER = [(0, 0), (1, 0), (0, 1), (1, 1)]  # YOLOX: top-left, bottom-left, top-right, bottom-right


def focus_model(
    channels: int = 3,
    size: int = 16,
    kernel: int = 3,
    pad: int = 1,
    order: list[tuple[int, int]] = YOLOX_ORDER,
    two_stage: bool = True,
    step: int = 2,
    stride: int = 1,
    group: int = 1,
    extra_reader: bool = False,
    seed: int = 0,
):
    """image -> 4 phase slices -> Concat -> Conv (+ bias) -> Sigmoid: the Focus stem of YOLOX."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def const(name: str, values: list[int]) -> str:
        inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    phases = []
    for index, (dy, dx) in enumerate(order):
        if two_stage:  # what torch exports for x[..., dy::2, dx::2]: one Slice per axis
            rows, out = f"rows{index}", f"phase{index}"
            nodes.append(
                helper.make_node(
                    "Slice",
                    [
                        "image",
                        const(f"s{index}h", [dy]),
                        const(f"e{index}h", [END]),
                        const(f"a{index}h", [2]),
                        const(f"t{index}h", [step]),
                    ],
                    [rows],
                )
            )
            nodes.append(
                helper.make_node(
                    "Slice",
                    [
                        rows,
                        const(f"s{index}w", [dx]),
                        const(f"e{index}w", [END]),
                        const(f"a{index}w", [3]),
                        const(f"t{index}w", [step]),
                    ],
                    [out],
                )
            )
        else:
            out = f"phase{index}"
            nodes.append(
                helper.make_node(
                    "Slice",
                    [
                        "image",
                        const(f"s{index}", [dy, dx]),
                        const(f"e{index}", [END, END]),
                        const(f"a{index}", [-2, -1]),
                        const(f"t{index}", [step, step]),
                    ],
                    [out],
                )
            )
        phases.append(out)
    nodes.append(helper.make_node("Concat", phases, ["stacked"], axis=1))
    out_channels = 8
    weight = rng.normal(size=(out_channels, 4 * channels // group, kernel, kernel)).astype(np.float32)
    inits += [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(rng.normal(size=out_channels).astype(np.float32), "b"),
    ]
    nodes.append(
        helper.make_node(
            "Conv",
            ["stacked", "w", "b"],
            ["conv"],
            kernel_shape=[kernel, kernel],
            pads=[pad] * 4,
            strides=[stride, stride],
            group=group,
        )
    )
    nodes.append(helper.make_node("Sigmoid", ["conv"], ["out"]))
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", "c", "h", "w"])]
    if extra_reader:
        nodes.append(helper.make_node("Relu", ["stacked"], ["side"]))
        outputs.append(helper.make_tensor_value_info("side", TensorProto.FLOAT, ["n", "c", "h", "w"]))
    graph = helper.make_graph(
        nodes,
        "focus",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, channels, size, size])],
        outputs,
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def run(model, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["out"], {"image": x})[0]


@pytest.mark.parametrize(
    "settings",
    [
        {},  # YOLOX-nano's stem: 3 channels, 3x3 conv, pad 1
        {"kernel": 1, "pad": 0},  # YOLOv5's older Focus variants
        {"channels": 1, "kernel": 5, "pad": 2},
        {"order": [(0, 0), (0, 1), (1, 0), (1, 1)]},  # any phase order: the weights follow it
        {"two_stage": False},  # one Slice cutting both axes
    ],
)
def test_fold_gives_the_same_outputs_with_one_strided_conv(settings: dict) -> None:
    model = focus_model(**settings)
    x = np.random.default_rng(1).random((1, settings.get("channels", 3), 16, 16), dtype=np.float32)
    before = run(model, x)
    assert fold_focus(model)
    onnx.checker.check_model(model)
    assert {n.op_type for n in model.graph.node} == {"Conv", "Sigmoid"}
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    attributes = {a.name: list(helper.get_attribute_value(a)) for a in conv.attribute if a.name != "group"}
    kernel, pad = settings.get("kernel", 3), settings.get("pad", 1)
    assert attributes == {"kernel_shape": [2 * kernel] * 2, "strides": [2, 2], "pads": [2 * pad] * 4}
    assert {i.name for i in model.graph.initializer} == {"w", "b"}  # the slices' constants are gone
    np.testing.assert_allclose(run(model, x), before, atol=1e-5)


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"step": 1}, "slices that are not pixel phases"),
        ({"stride": 2}, "a strided conv after the stack"),
        ({"group": 2}, "a grouped conv"),
        ({"size": 15}, "an odd image size: the phases differ in size"),
        ({"extra_reader": True}, "the stacked tensor is read elsewhere too"),
    ],
)
def test_what_is_not_a_foldable_focus_stays_untouched(settings: dict, why: str) -> None:
    model = focus_model(**settings)
    before = model.SerializeToString()
    assert not fold_focus(model), why
    assert model.SerializeToString() == before


def test_yolox_nano_folds_exactly(shared_data: Path) -> None:
    source = shared_data / "models" / "yolox_nano.onnx"
    model = onnx.load(str(source))
    x = np.random.default_rng(2).random((1, 3, 416, 416), dtype=np.float32)
    reference = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    before = reference.run(None, {"images": x})[0]
    nodes = len(model.graph.node)
    assert fold_focus(model)
    assert len(model.graph.node) == nodes - 9  # 8 Slices and the Concat
    first = next(n for n in model.graph.node if n.op_type == "Conv")
    assert first.input[0] == "images" and first.name == "Conv_41"  # the name quantisation rules refer to
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    np.testing.assert_allclose(after[0], before, atol=1e-3, rtol=1e-4)

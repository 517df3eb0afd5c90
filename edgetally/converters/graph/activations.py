"""Replace SiLU (x * Sigmoid(x)) with the activation a target's INT8 kernels fuse into a convolution.

Why: an INT8 SiLU costs more than the INT8 convolution it follows. onnxruntime runs it as
QLinearSigmoid + QLinearMul (YOLOX-nano INT8 stays at ~1.0x FP32), while QDQ Conv + Relu becomes one
QLinearConv (0.64x); OpenVINO fuses ReLU or HSwish into the INT8 convolution as a post-op
(benchmarks/int8_speed_probe.py). The replacement changes what the network computes, so
edgetally.converters.distill retrains the weights against the FP32 model before quantising.

The new node keeps the Mul's name and output tensor, so every consumer, every tensor name and every
Conv initializer stay as they were: trained weights can be written back by name.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from edgetally.converters.graph.nodes import upgrade_opset
from edgetally.errors import UsageError

# activation name (CLI) -> ONNX op; HardSwish exists from opset 14
ONNX_OPS = {"relu": "Relu", "hardswish": "HardSwish"}
_MIN_OPSET = {"HardSwish": 14}
# --activation-share: YOLOX-nano at 416 px, 0.7 replaces the 38 SiLUs on the 208/104/52-pixel maps (71 % of the
# elements) and keeps the 66 on the 26/13-pixel maps (measurements: docs/int8.md)
DEFAULT_SHARE = 0.7


def silu_pairs(model: Any) -> list[tuple[Any, Any]]:
    """(Sigmoid, Mul) node pairs computing x * Sigmoid(x), where the Sigmoid feeds only that Mul."""
    sigmoid = {n.output[0]: n for n in model.graph.node if n.op_type == "Sigmoid"}
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    pairs = []
    for node in model.graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        for gate_input, x in ((node.input[1], node.input[0]), (node.input[0], node.input[1])):
            gate = sigmoid.get(gate_input)
            if gate is not None and gate.input[0] == x and readers.get(gate_input) == 1:
                pairs.append((gate, node))
                break
    return pairs


def silu_sizes(model: Any) -> dict[str, tuple[int, int, int]]:
    """Each SiLU's Mul name -> (height, width, elements) of its output, by ONNX shape inference.
    UsageError when a shape is not static (the share of the cost cannot be told)."""
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value if d.HasField("dim_value") else 0 for d in v.type.tensor_type.shape.dim]
        for v in (*inferred.graph.value_info, *inferred.graph.output)
    }
    sizes = {}
    for _gate, mul in silu_pairs(model):
        shape = shapes.get(mul.output[0], [])
        if len(shape) != 4 or 0 in shape:
            raise UsageError(
                f"SiLU {mul.name}: output shape {shape or 'unknown'} is not a static NCHW shape: "
                "use --activation-share 1 (replace every SiLU)"
            )
        sizes[mul.name] = (shape[2], shape[3], shape[1] * shape[2] * shape[3])
    return sizes


def largest_maps(sizes: dict[str, tuple[int, int, int]], share: float) -> set[str]:
    """The SiLUs on the largest feature maps, whole resolution levels at a time, until they hold at
    least ``share`` of all SiLU output elements (what the activations cost scales with elements; the
    small, deep maps are few elements but decide what the network recognises)."""
    if not 0.0 < share <= 1.0:
        raise UsageError(f"--activation-share must be in (0, 1], got {share}")
    total = sum(elements for _h, _w, elements in sizes.values())
    chosen: set[str] = set()
    covered = 0
    for pixels in sorted({h * w for h, w, _e in sizes.values()}, reverse=True):
        if covered >= share * total:
            break
        level = {name for name, (h, w, _e) in sizes.items() if h * w == pixels}
        chosen |= level
        covered += sum(sizes[name][2] for name in level)
    return chosen


def replace_silu(
    model: Any, op_type: str, domain: str = "", only: Collection[str] | None = None
) -> tuple[Any, list[str]]:
    """``model`` with every SiLU (or those whose Mul is named in ``only``) replaced by ``op_type`` (one
    node); -> (model, names of the new nodes).

    The model may be returned as a new object (opset upgrade for HardSwish)."""
    if op_type in _MIN_OPSET:
        model = upgrade_opset(model, _MIN_OPSET[op_type])
    pairs = [(gate, mul) for gate, mul in silu_pairs(model) if only is None or mul.name in only]
    replaced = []
    for gate, mul in pairs:
        x = gate.input[0]
        del mul.input[:]
        mul.input.append(x)
        mul.op_type = op_type
        mul.domain = domain
        replaced.append(mul.name)
        model.graph.node.remove(gate)
    return model, replaced

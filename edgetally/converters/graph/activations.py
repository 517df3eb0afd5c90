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

from typing import Any

from edgetally.converters.graph.nodes import upgrade_opset

# activation name (CLI) -> ONNX op; HardSwish exists from opset 14
ONNX_OPS = {"relu": "Relu", "hardswish": "HardSwish"}
_MIN_OPSET = {"HardSwish": 14}


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


def replace_silu(model: Any, op_type: str, domain: str = "") -> tuple[Any, list[str]]:
    """``model`` with every SiLU replaced by ``op_type`` (one node); -> (model, names of the new nodes).

    The model may be returned as a new object (opset upgrade for HardSwish)."""
    if op_type in _MIN_OPSET:
        model = upgrade_opset(model, _MIN_OPSET[op_type])
    pairs = silu_pairs(model)
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

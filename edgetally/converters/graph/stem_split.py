"""Split the stem's channels into groups of similar range: full-integer INT8 without a float stem.

A full-integer model quantises every activation tensor with ONE scale. After YOLOX-nano's first
conv + SiLU the 16 channels peak anywhere between 0.03 and 138 (folded batch norm), so on one scale
the small channels vanish, and the depthwise conv that follows amplifies what is left: -12 mAP50-95
points, nearly all of the full-integer loss (measured: keeping just those two convs float recovers
~10 points). Depthwise convs work channel by channel, so the chain

    Conv -> SiLU -> depthwise Conv -> SiLU -> Conv

is rewritten exactly as one Conv/SiLU/depthwise/SiLU branch per channel group, concatenated (in group
order) before the last Conv, whose input channels are permuted to match. Every branch tensor gets its
own INT8 scale; the ops are the same kinds as before (the Edge TPU maps them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.errors import ConversionError

# A new group starts where a channel's peak is this many times smaller than its group's largest.
GROUP_RATIO = 4.0
MAX_GROUPS = 6


def _chain(model: Any) -> list[Any]:
    """[conv1, sigmoid1, mul1, depthwise, sigmoid2, mul2, conv3] of the first such chain, or raise."""
    nodes = list(model.graph.node)
    consumers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def silu(conv: Any) -> tuple[Any, Any]:
        after = consumers.get(conv.output[0], [])
        sig = next((n for n in after if n.op_type == "Sigmoid"), None)
        mul = next((n for n in after if n.op_type == "Mul" and sig is not None and sig.output[0] in n.input), None)
        if sig is None or mul is None or len(after) != 2:
            raise ConversionError(f"stem split: '{conv.name}' is not followed by SiLU (Sigmoid + Mul)")
        return sig, mul

    def only_consumer(name: str, op: str) -> Any:
        after = consumers.get(name, [])
        if len(after) != 1 or after[0].op_type != op:
            raise ConversionError(f"stem split: '{name}' does not feed exactly one {op}")
        return after[0]

    conv1 = next(n for n in nodes if n.op_type == "Conv")
    sig1, mul1 = silu(conv1)
    depthwise = only_consumer(mul1.output[0], "Conv")
    sig2, mul2 = silu(depthwise)
    return [conv1, sig1, mul1, depthwise, sig2, mul2, only_consumer(mul2.output[0], "Conv")]


def channel_groups(peaks: np.ndarray, ratio: float = GROUP_RATIO, max_groups: int = MAX_GROUPS) -> list[list[int]]:
    """Channels (largest peak first) grouped so each group spans at most ``ratio`` (the last takes the rest)."""
    order = [int(c) for c in np.argsort(-peaks, kind="stable")]
    groups: list[list[int]] = [[order[0]]]
    for channel in order[1:]:
        if peaks[groups[-1][0]] > ratio * max(float(peaks[channel]), 1e-9) and len(groups) < max_groups:
            groups.append([channel])
        else:
            groups[-1].append(channel)
    return groups


def channel_peaks(model: Any, tensors: list[str], calibration: CalibrationSet) -> list[np.ndarray]:
    """Per-channel max |value| of each tensor over the calibration set, in one onnxruntime pass."""
    import copy

    import onnx
    import onnxruntime as ort

    probe = copy.deepcopy(model)
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    peaks: list[np.ndarray] | None = None
    for batch in calibration.batches():
        values = [np.abs(v).max(axis=(0, 2, 3)) for v in session.run(tensors, {model.graph.input[0].name: batch})]
        peaks = values if peaks is None else [np.maximum(p, v) for p, v in zip(peaks, values)]
    return peaks or []


def _branch(
    graph: Any, chain: Sequence[Any], group: np.ndarray, index: int, prefix: str = "stem_split"
) -> tuple[list, str]:
    """Conv/SiLU/depthwise/SiLU nodes for one channel group; returns (nodes, output name).

    prefix: names every new node and initializer (one per rewritten chain, so they never collide)."""
    import onnx
    from onnx import numpy_helper

    conv1, _s1, _m1, depthwise = chain[:4]
    arrays = {i.name: i for i in graph.initializer}

    def weights(node: Any, slot: int, tag: str) -> str:
        name = f"{prefix}_{tag}_{index}"
        value = numpy_helper.to_array(arrays[node.input[slot]])[group]
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def attrs(node: Any, **override: Any) -> dict:
        return {**{a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}, **override}

    p = f"{prefix}_{index}_"
    nodes = [
        onnx.helper.make_node(
            "Conv",
            [conv1.input[0], weights(conv1, 1, "w1"), weights(conv1, 2, "b1")],
            [p + "c1"],
            name=p + "conv",
            **attrs(conv1),
        ),
        onnx.helper.make_node("Sigmoid", [p + "c1"], [p + "g1"], name=p + "sigmoid1"),
        onnx.helper.make_node("Mul", [p + "c1", p + "g1"], [p + "s1"], name=p + "mul1"),
        onnx.helper.make_node(
            "Conv",
            [p + "s1", weights(depthwise, 1, "w2"), weights(depthwise, 2, "b2")],
            [p + "c2"],
            name=p + "depthwise",
            **attrs(depthwise, group=len(group)),
        ),
        onnx.helper.make_node("Sigmoid", [p + "c2"], [p + "g2"], name=p + "sigmoid2"),
        onnx.helper.make_node("Mul", [p + "c2", p + "g2"], [p + "s2"], name=p + "mul2"),
    ]
    return nodes, p + "s2"


def split_stem_channels(source: Path, target: Path, calibration: CalibrationSet) -> dict:
    """Write ``target``: ``source`` with its stem chain split by channel range; -> info for report.json."""
    import onnx
    from onnx import numpy_helper

    from edgetally.converters.graph.nodes import name_nodes

    model = onnx.load(str(source))
    name_nodes(model)  # nodes are matched by name below
    chain = _chain(model)
    conv1, depthwise, conv3 = chain[0], chain[3], chain[6]
    arrays = {i.name: i for i in model.graph.initializer}
    constants = (*conv1.input[1:], *depthwise.input[1:], conv3.input[1])
    if len(conv1.input) < 3 or len(depthwise.input) < 3 or any(n not in arrays for n in constants):
        raise ConversionError("stem split: the stem convs need constant weights and biases")
    channels = numpy_helper.to_array(arrays[depthwise.input[1]]).shape[0]
    group_attr = next((a.i for a in depthwise.attribute if a.name == "group"), 1)
    if group_attr != channels:
        raise ConversionError(
            f"stem split: '{depthwise.name}' is not depthwise (group {group_attr}, {channels} channels)"
        )
    (peaks,) = channel_peaks(model, [chain[2].output[0]], calibration)
    groups = channel_groups(peaks)
    new_nodes, outputs = [], []
    for index, group in enumerate(groups):
        nodes, output = _branch(model.graph, chain, np.asarray(group), index)
        new_nodes += nodes
        outputs.append(output)
    new_nodes.append(onnx.helper.make_node("Concat", outputs, ["stem_split_concat"], name="stem_split_concat", axis=1))
    permuted = numpy_helper.to_array(arrays[conv3.input[1]])[:, np.concatenate(groups)]
    model.graph.initializer.append(numpy_helper.from_array(permuted, "stem_split_w3"))
    conv3.input[0], conv3.input[1] = "stem_split_concat", "stem_split_w3"
    _replace(model.graph, chain[:6], new_nodes, conv3)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return {
        "stem_split_groups": len(groups),
        "stem_split_peaks": [[round(float(peaks[c]), 3) for c in g] for g in groups],
    }


def _replace(graph: Any, old: Sequence[Any], new: Sequence[Any], before: Any) -> None:
    """Drop ``old`` nodes, insert ``new`` right before ``before``; unused initializers go."""
    gone = {n.name for n in old}
    kept = [n for n in graph.node if n.name not in gone]
    position = next(i for i, n in enumerate(kept) if n.name == before.name)
    ordered = kept[:position] + list(new) + kept[position:]
    del graph.node[:]
    graph.node.extend(ordered)
    used = {name for node in graph.node for name in node.input}
    live = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)

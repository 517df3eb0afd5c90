"""Per-layer INT8 sensitivity: each layer's own contribution to the model's output error.

A layer is a weighted op (Conv) with its activation (SiLU's Sigmoid + Mul, Relu, HardSwish, Clip).
For each layer, the FP32 model is run with ONLY that layer quantised as the INT8 model will quantise
it -- per-channel symmetric S8 weights (7-bit where the model narrows them), U8 asymmetric Q/DQ on
every tensor the layer produces (and on the image when the layer reads it) with the calibrated
ranges -- and its output is compared with FP32 on a few calibration images. The layers whose error
is largest are the few worth keeping in float (``Strategy.float_sensitive``); everything else stays
INT8. Calibration images only: the evaluation images never influence which layers stay float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.converters.graph.nodes import WEIGHTED_OPS, tail_nodes

ACTIVATION_OPS = frozenset({"Sigmoid", "Mul", "Relu", "Clip", "HardSwish", "LeakyRelu"})


@dataclass(frozen=True)
class Layer:
    name: str  # the weighted op's node name
    nodes: tuple[str, ...]  # the op and its activation nodes (what nodes_to_exclude takes)
    produced: tuple[str, ...]  # tensors those nodes write (the INT8 model quantises them)


def layers(model: Any) -> list[Layer]:
    """Every weighted op outside the decode tail, with the activation nodes that follow it."""
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    tail = set(tail_nodes(model))
    found = []
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OPS or node.name in tail:
            continue
        members, frontier = [node], [node]
        while frontier:  # follow activation ops fed only by the layer (SiLU: Sigmoid and Mul both read the conv)
            nxt = [
                r
                for n in frontier
                for out in n.output
                for r in readers.get(out, [])
                if r.op_type in ACTIVATION_OPS
                and r not in members
                and all(_producer_in(i, members) for i in r.input if i in _outputs(model))
            ]
            members += nxt
            frontier = nxt
        found.append(Layer(node.name, tuple(n.name for n in members), tuple(o for n in members for o in n.output)))
    return found


def _outputs(model: Any) -> set[str]:
    return {out for node in model.graph.node for out in node.output}


def _producer_in(tensor: str, members: list) -> bool:
    return any(tensor in n.output for n in members)


def _uint8_params(low: float, high: float) -> tuple[np.float32, np.uint8]:
    """onnxruntime's U8 asymmetric parameters for a range (which it widens to include zero)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 if high > low else 1.0
    return np.float32(scale), np.uint8(np.clip(round(-low / scale), 0, 255))


def fake_quant_weight(weight: np.ndarray, qmax: int = 127) -> np.ndarray:
    """Per-output-channel symmetric S8 weights on -qmax..qmax (64: onnxruntime's reduce_range), dequantised."""
    flat = weight.reshape(weight.shape[0], -1)
    scale = np.abs(flat).max(axis=1) / float(qmax)
    scale[scale == 0] = 1.0
    steps = np.clip(np.round(flat / scale[:, None]), -qmax, qmax)
    return (steps * scale[:, None]).reshape(weight.shape).astype(np.float32)


def _qdq(graph: Any, source: str, target: str, low: float, high: float) -> None:
    """Append QuantizeLinear(source) -> DequantizeLinear -> ``target`` with U8 parameters for [low, high]."""
    from onnx import helper, numpy_helper

    scale, zero = _uint8_params(low, high)
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(scale), f"{target}__s"),
            numpy_helper.from_array(np.array(zero), f"{target}__z"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("QuantizeLinear", [source, f"{target}__s", f"{target}__z"], [f"{target}__q"]),
            helper.make_node("DequantizeLinear", [f"{target}__q", f"{target}__s", f"{target}__z"], [target]),
        ]
    )


def only_layer_quantised(
    model: Any, layer: Layer, ranges: dict[str, tuple[float, float]], weight_qmax: int = 127
) -> Any:
    """A copy of the FP32 ``model`` with just ``layer`` quantised: fake-quantised weights, Q/DQ on the
    activation it reads (for it alone) and on every tensor it writes (for all readers)."""
    import onnx
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    inits = {i.name: i for i in graph.initializer}
    node = next(n for n in graph.node if n.name == layer.name)
    if len(node.input) > 1 and node.input[1] in inits:
        weight = numpy_helper.to_array(inits[node.input[1]])
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(fake_quant_weight(weight, weight_qmax), node.input[1]))
    source = node.input[0]
    if source in ranges and source not in layer.produced:
        node.input[0] = f"{source}__fq"
        _qdq(graph, source, node.input[0], *ranges[source])
    for tensor in (t for t in layer.produced if t in ranges):
        for other in graph.node:
            other.output[:] = [f"{tensor}__fq_src" if o == tensor else o for o in other.output]
        _qdq(graph, f"{tensor}__fq_src", tensor, *ranges[tensor])
    return _toposorted(copy)


def _toposorted(model: Any) -> Any:
    """Nodes in dependency order (the added Q/DQ pairs were appended at the end)."""
    produced = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
    pending, ordered = list(model.graph.node), []
    while pending:
        ready = [n for n in pending if all(not i or i in produced for i in n.input)]
        if not ready:
            raise ValueError("graph has a cycle or a dangling input")
        for n in ready:
            ordered.append(n)
            produced.update(n.output)
        pending = [n for n in pending if n not in ready]
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return model


def output_error(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Relative squared error of the outputs; a packed YOLO head's boxes and scores count separately."""
    total = 0.0
    for ref, out in zip(reference, outputs, strict=True):
        parts = [(..., slice(0, 4)), (..., slice(4, None))] if ref.ndim == 3 and ref.shape[-1] > 5 else [(...,)]
        for part in parts:
            r, o = ref[part], out[part]
            total += float(((o - r) ** 2).sum() / max(float((r**2).sum()), 1e-12))
    return total


def rank_layers(
    model_path: Path,
    ranges: dict[str, tuple[float, float]],
    samples: Sequence[np.ndarray],
    threads: int = 1,
    narrow_weights: frozenset[str] = frozenset(),
) -> list[tuple[str, float]]:
    """(layer name, output error with only that layer quantised), worst first. Layers named in
    ``narrow_weights`` get 7-bit weights (-64..64), as the INT8 model will give them."""
    import onnx

    model = onnx.load(str(model_path))
    reference = _run(model, samples, threads)
    scores = []
    for layer in layers(model):
        outputs = _run(
            only_layer_quantised(model, layer, ranges, 64 if layer.name in narrow_weights else 127), samples, threads
        )
        error = float(np.mean([output_error(r, o) for r, o in zip(reference, outputs, strict=True)]))
        scores.append((layer.name, round(error, 6)))
    return sorted(scores, key=lambda item: -item[1])


def _run(model: Any, samples: Sequence[np.ndarray], threads: int) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    return [session.run(None, {feed: sample}) for sample in samples]

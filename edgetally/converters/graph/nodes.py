"""ONNX graph helpers for quantisation: opset upgrade, node naming, and finding sensitive nodes.

"Decode tail" = every node from which no weighted op (Conv, MatMul, Gemm) is reachable: in a
YOLO head those are the final sigmoids, concats, reshapes and the transpose that pack box
offsets (unbounded) and probabilities ([0, 1]) into one tensor. Quantised, that tensor shares one
scale and either the boxes clip or the scores lose resolution -- the failure of the known-bad
TFLite specimen in ../shared/data/models. Found structurally, so it works for any YOLO export.
"""

from __future__ import annotations

from collections import defaultdict

WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})


def upgrade_opset(model, target: int = 13):
    """Per-channel QDQ needs DequantizeLinear's ``axis`` (opset >= 13); older models are converted.

    Without it onnxruntime writes a model that fails to load ("Unrecognized attribute: axis").
    """
    from onnx import version_converter

    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), target)
    if current >= target:
        return model
    return version_converter.convert_version(model, target)


def name_nodes(model) -> None:
    """Give every unnamed node a stable name: nodes_to_exclude and reports refer to nodes by name."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def consumers(model) -> dict[str, list]:
    """Tensor name -> the nodes that read it."""
    readers: dict[str, list] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            readers[name].append(node)
    return readers


def tail_nodes(model) -> list[str]:
    """Names of nodes that reach no weighted op downstream (the decode tail), in graph order."""
    readers = consumers(model)
    reaches: dict[str, bool] = {}
    # Reverse topological order (ONNX graphs are stored topologically sorted).
    for node in reversed(model.graph.node):
        downstream = (c for out in node.output for c in readers.get(out, []))
        reaches[node.name] = node.op_type in WEIGHTED_OPS or any(reaches.get(c.name, False) for c in downstream)
    return [n.name for n in model.graph.node if not reaches[n.name]]


def stem_nodes(model, convs: int) -> list[str]:
    """The first ``convs`` weighted ops plus their elementwise activations (Sigmoid/Mul of SiLU, Relu...)."""
    if convs <= 0:
        return []
    readers = consumers(model)
    names: list[str] = []
    weighted = [n for n in model.graph.node if n.op_type in WEIGHTED_OPS][:convs]
    for conv in weighted:
        names.append(conv.name)
        for out in conv.output:
            names.extend(
                c.name for c in readers.get(out, []) if c.op_type in {"Sigmoid", "Mul", "Relu", "Clip", "HardSwish"}
            )
    return list(dict.fromkeys(names))


def input_convs(model) -> list[str]:
    """Weighted ops that read the model's input through unweighted ops only (YOLOX: the conv after the
    Focus slices), in graph order. Their INT8 input codes are the pixels themselves, bright ones near 255."""
    readers = consumers(model)
    frontier = [i.name for i in model.graph.input]
    seen, found = set(frontier), set()
    while frontier:
        for node in readers.get(frontier.pop(), []):
            if node.op_type in WEIGHTED_OPS:
                found.add(node.name)
                continue
            fresh = [out for out in node.output if out not in seen]
            seen.update(fresh)
            frontier.extend(fresh)
    return [n.name for n in model.graph.node if n.name in found]


def head_output_convs(model) -> list[str]:
    """Weighted ops whose output feeds the decode tail directly: the last conv of each head branch."""
    tail = set(tail_nodes(model))
    readers = consumers(model)
    result = []
    for node in model.graph.node:
        if node.op_type in WEIGHTED_OPS and any(c.name in tail for out in node.output for c in readers.get(out, [])):
            result.append(node.name)
    return result

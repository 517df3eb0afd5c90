"""Split a packed detector output into parts that each get their own INT8 scale (full-integer TFLite).

YOLOX's ``output [1, N, 85]`` packs box regressions (unbounded: log w/h, offsets) and
probabilities ([0, 1]) in one tensor. A full-integer model quantises every tensor with one scale,
so box offsets clip or scores lose all resolution (the known-bad specimen in ../shared/data).
Slicing the final tensor does not help -- the packed tensor is still quantised -- so the split is
pushed back through the graph (Transpose, Reshape, Concat, elementwise ops) to where the parts are
still separate tensors: the per-level Concat([reg, sigmoid(obj), sigmoid(cls)]) of the head. The
new graph ends in one output per part; ``concat(parts, last axis)`` equals the old output exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.errors import ConversionError

# Elementwise ops with one tensor input: split(op(x)) == op(split(x)).
_UNARY = frozenset({"Sigmoid", "Relu", "Exp", "Identity", "Tanh", "Neg", "Abs"})


class _Splitter:
    def __init__(self, model: Any) -> None:
        import onnx

        self.model = onnx.shape_inference.infer_shapes(model)
        self.graph = self.model.graph
        self.producer = {out: node for node in self.graph.node for out in node.output}
        self.shapes = {
            v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*self.graph.value_info, *self.graph.output, *self.graph.input]
        }
        self.new_nodes: list = []
        self.counter = 0

    def _name(self, stem: str) -> str:
        self.counter += 1
        return f"split_{stem}_{self.counter}"

    def _node(self, op: str, inputs: Sequence[str], shape: list[int], **attrs: Any) -> str:
        import onnx

        out = self._name(op.lower())
        self.new_nodes.append(onnx.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        self.shapes[out] = shape
        return out

    def _const(self, values: Sequence[int]) -> str:
        from onnx import numpy_helper

        name = self._name("const")
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def shape(self, tensor: str) -> list[int]:
        shape = self.shapes.get(tensor)
        if not shape or any(d <= 0 for d in shape):
            raise ConversionError(f"output split: tensor '{tensor}' has no static shape ({shape})")
        return shape

    def split(self, tensor: str, axis: int, bounds: Sequence[int]) -> list[str]:
        """Tensors equal to ``tensor`` sliced along ``axis`` at ``bounds`` (0 < b1 < ... < dim)."""
        node = self.producer.get(tensor)
        op = node.op_type if node is not None else None
        if op == "Transpose":
            perm = [a.ints for a in node.attribute if a.name == "perm"][0]
            return [
                self._node("Transpose", [p], self._permuted(p, perm), perm=list(perm))
                for p in self.split(node.input[0], perm[axis], bounds)
            ]
        if op == "Concat":
            return self._split_concat(node, axis, bounds)
        if op == "Reshape":  # static shapes come from shape inference
            return self._split_reshape(node, tensor, axis, bounds)
        if op in _UNARY:
            return [self._node(op, [p], self.shape(p)) for p in self.split(node.input[0], axis, bounds)]
        return self._slice(tensor, axis, bounds)

    def _permuted(self, tensor: str, perm: Sequence[int]) -> list[int]:
        shape = self.shape(tensor)
        return [shape[p] for p in perm]

    def _split_concat(self, node: Any, axis: int, bounds: Sequence[int]) -> list[str]:
        cat_axis = [a.i for a in node.attribute if a.name == "axis"][0] % len(self.shape(node.output[0]))
        if cat_axis != axis:  # concat of pieces along another axis: split each piece, concat the parts
            pieces = [self.split(i, axis, bounds) for i in node.input]
            return [self._concat([p[k] for p in pieces], cat_axis) for k in range(len(bounds) + 1)]
        edges = np.cumsum([0] + [self.shape(i)[axis] for i in node.input])
        total = int(edges[-1])
        pieces: list[tuple[int, int, str]] = []  # (global start, global end, tensor)
        for name, start, end in zip(node.input, edges[:-1], edges[1:]):
            inside = [int(b) for b in bounds if start < b < end]
            split = self.split(name, axis, [b - int(start) for b in inside]) if inside else [name]
            cuts = [int(start), *inside, int(end)]
            pieces.extend(zip(cuts[:-1], cuts[1:], split))
        return [
            self._concat([t for a, b, t in pieces if lo <= a and b <= hi], axis)
            for lo, hi in zip([0, *bounds], [*bounds, total])
        ]

    def _concat(self, pieces: list[str], axis: int) -> str:
        if len(pieces) == 1:
            return pieces[0]
        shape = list(self.shape(pieces[0]))
        shape[axis] = sum(self.shape(p)[axis] for p in pieces)
        return self._node("Concat", pieces, shape, axis=axis)

    def _split_reshape(self, node: Any, tensor: str, axis: int, bounds: Sequence[int]) -> list[str]:
        src, out = self.shape(node.input[0]), self.shape(tensor)
        # The split axis must survive the reshape unchanged: same leading dims up to and including it.
        if axis >= len(src) or src[: axis + 1] != out[: axis + 1]:
            return self._slice(tensor, axis, bounds)
        result = []
        for part, (lo, hi) in zip(self.split(node.input[0], axis, bounds), zip([0, *bounds], [*bounds, out[axis]])):
            shape = list(out)
            shape[axis] = hi - lo
            result.append(self._node("Reshape", [part, self._const(shape)], shape))
        return result

    def _slice(self, tensor: str, axis: int, bounds: Sequence[int]) -> list[str]:
        """Fallback: plain slices (correct, but the packed tensor keeps its one scale)."""
        dim = self.shape(tensor)[axis]
        parts = []
        for lo, hi in zip([0, *bounds], [*bounds, dim]):
            shape = list(self.shape(tensor))
            shape[axis] = hi - lo
            parts.append(
                self._node("Slice", [tensor, self._const([lo]), self._const([hi]), self._const([axis])], shape)
            )
        return parts


def split_output(source: Path, target: Path, bounds: Sequence[int], names: Sequence[str]) -> list[list[int]]:
    """Write ``target``: ``source`` with its single output split along the last axis at ``bounds``.

    names: one output name per part. Returns the parts' shapes. Raises ConversionError when the
    model has more than one output or no static shapes.
    """
    import onnx

    model = onnx.load(str(source))
    if len(model.graph.output) != 1:
        raise ConversionError(
            f"{source}: output split needs one packed output, the model has {len(model.graph.output)}"
        )
    splitter = _Splitter(model)
    output = splitter.graph.output[0]
    rank = len(splitter.shape(output.name))
    parts = splitter.split(output.name, rank - 1, bounds)
    graph = splitter.graph
    graph.node.extend(splitter.new_nodes)
    for part, name in zip(parts, names):
        for node in graph.node:
            node.output[:] = [name if o == part else o for o in node.output]
            node.input[:] = [name if i == part else i for i in node.input]
    shapes = [splitter.shapes[p] for p in parts]
    del graph.output[:]
    graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in zip(names, shapes))
    _prune(graph)
    del graph.value_info[:]
    _toposort(graph)
    onnx.checker.check_model(splitter.model)
    onnx.save(splitter.model, str(target))
    return shapes


def _prune(graph: Any) -> None:
    """Drop nodes whose outputs nothing uses any more (the old packed tail)."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = {i for n in graph.node for i in n.input}
    live = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)


def _toposort(graph: Any) -> None:
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ConversionError("output split produced a cyclic graph")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)

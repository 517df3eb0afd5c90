"""A space-to-depth stem ("Focus", YOLOX / YOLOv5 before v6) and its convolution -> one stride-2 convolution.

Focus cuts the image into its four pixel phases (Slice nodes, step 2 on height and width), stacks them
on the channels (Concat) and convolves them (k x k, stride 1, pad p). The same sums are one
convolution on the image itself, kernel 2k, stride 2, pad 2p:

    folded[o, c, 2i + dy, 2j + dx] = weight[o, phase(dy, dx) * C + c, i, j]

Exact: the same products, added in another order. OpenVINO runs the Slices and the Concat with its
reference kernels, about 1.5 ms of an 11 ms YOLOX-nano INT8 inference at 1 thread; the folded
convolution costs about what the old one did (docs/int8.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetally.converters.graph.nodes import consumers

_H, _W = 2, 3  # NCHW axes


def fold_focus(model: Any) -> bool:
    """Fold the first Focus stem found in ``model`` (an onnx.ModelProto, changed in place); -> whether one was."""
    readers = consumers(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    return any(
        concat.op_type == "Concat" and _fold_at(model, concat, readers, producers) for concat in model.graph.node
    )


def _fold_at(model, concat, readers: dict, producers: dict) -> bool:
    if _attribute(concat, "axis", None) not in (1, -3) or len(concat.input) != 4:
        return False
    users = readers.get(concat.output[0], [])
    if len(users) != 1 or users[0].op_type != "Conv":
        return False
    conv = users[0]
    phases = [_phase(model, name, producers, readers) for name in concat.input]
    if any(p is None for p in phases) or sorted(phases) != [(0, 0), (0, 1), (1, 0), (1, 1)]:  # type: ignore[type-var]
        return False
    image = {chain[-1].input[0] for name in concat.input for chain in [_chain(name, producers)]}
    if len(image) != 1 or not _even_static(model, image.pop()):
        return False
    weight = _initializer(model, conv.input[1]) if len(conv.input) > 1 else None
    pads = _attribute(conv, "pads", [0, 0, 0, 0])
    if (
        weight is None
        or _attribute(conv, "group", 1) != 1
        or any(s != 1 for s in _attribute(conv, "strides", [1, 1]))
        or any(d != 1 for d in _attribute(conv, "dilations", [1, 1]))
        or _attribute(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
        or len(pads) != 4
        or pads[:2] != pads[2:]
        or sum(1 for node in model.graph.node for name in node.input if name == conv.input[1]) != 1
    ):
        return False
    _rewrite(model, concat, conv, weight, phases, pads, producers)  # type: ignore[arg-type]
    return True


def _rewrite(model, concat, conv, weight, phases: list[tuple[int, int]], pads: list[int], producers: dict) -> None:
    from onnx import helper, numpy_helper

    w = numpy_helper.to_array(weight)
    out_channels, stacked, kh, kw = w.shape
    channels = stacked // 4
    folded = np.zeros((out_channels, channels, 2 * kh, 2 * kw), w.dtype)
    for block, (dy, dx) in enumerate(phases):
        folded[:, :, dy::2, dx::2] = w[:, block * channels : (block + 1) * channels]
    weight.CopyFrom(numpy_helper.from_array(folded, weight.name))
    image = _chain(concat.input[0], producers)[-1].input[0]
    conv.input[0] = image
    for attribute in [a for a in conv.attribute if a.name in ("kernel_shape", "strides", "pads")]:
        conv.attribute.remove(attribute)
    ph, pw = pads[:2]
    conv.attribute.extend(
        [
            helper.make_attribute("kernel_shape", [2 * kh, 2 * kw]),
            helper.make_attribute("strides", [2, 2]),
            helper.make_attribute("pads", [2 * ph, 2 * pw, 2 * ph, 2 * pw]),
        ]
    )
    slices = [node for name in concat.input for node in _chain(name, producers)]
    gone = {id(concat)} | {id(node) for node in slices}
    kept = [node for node in model.graph.node if id(node) not in gone]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    _drop_unused(model, {name for node in slices for name in node.input[1:]})


def _chain(name: str, producers: dict) -> list:
    """The Slice nodes from ``name`` back to the first input that no Slice produced, nearest first."""
    chain = []
    node = producers.get(name)
    while node is not None and node.op_type == "Slice":
        chain.append(node)
        node = producers.get(node.input[0])
    return chain


def _phase(model, name: str, producers: dict, readers: dict) -> tuple[int, int] | None:
    """(dy, dx) when ``name`` is the image sliced with step 2 from offset dy in height and dx in width."""
    chain = _chain(name, producers)
    if not chain or any(len(readers.get(node.output[0], [])) != 1 for node in chain):
        return None
    offsets: dict[int, int] = {}
    for node in chain:
        cut = _slice(model, node)
        if cut is None:
            return None
        for axis, (start, step) in cut.items():
            if axis in offsets or step != 2 or start not in (0, 1):
                return None
            offsets[axis] = start
    if set(offsets) != {_H, _W}:
        return None
    return offsets[_H], offsets[_W]


def _slice(model, node) -> dict[int, tuple[int, int]] | None:
    """{axis: (start, step)} of a Slice that runs every cut axis to its end, or None."""
    values = [
        _constant(model, name) if index < len(node.input) and name else None for index, name in enumerate(node.input)
    ]
    values += [None] * (5 - len(values))
    starts, ends, axes, steps = values[1:5]
    if starts is None or ends is None or len(node.input) < 4:
        return None
    axes = axes if axes is not None else np.arange(len(starts))
    steps = steps if steps is not None else np.ones(len(starts), np.int64)
    cut = {}
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if end < 2**30:  # a Focus slice runs to the end of its axis
            return None
        cut[int(axis) % 4] = (int(start), int(step))
    return cut


def _constant(model, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    init = _initializer(model, name)
    if init is not None:
        return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t) if node.attribute[0].name == "value" else None
    return None


def _initializer(model, name: str):
    return next((init for init in model.graph.initializer if init.name == name), None)


def _even_static(model, name: str) -> bool:
    """Height and width of graph input ``name`` are known and even (a Focus of an odd size drops a row)."""
    value = next((v for v in model.graph.input if v.name == name), None)
    if value is None:
        return False
    dims = value.type.tensor_type.shape.dim
    if len(dims) != 4:
        return False
    sizes = [d.dim_value for d in dims[2:]]
    return all(size > 0 and size % 2 == 0 for size in sizes)


def _attribute(node, name: str, default):
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _drop_unused(model, names: set[str]) -> None:
    """The removed Slices' starts / ends / axes / steps that nothing else reads: as initializers, Constant
    nodes, or (in old models) graph inputs with initializers."""
    used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    dead = names - used
    for field in (model.graph.initializer, model.graph.input):
        kept = [item for item in field if item.name not in dead]
        del field[:]
        field.extend(kept)
    nodes = [n for n in model.graph.node if n.op_type != "Constant" or n.output[0] not in dead]
    del model.graph.node[:]
    model.graph.node.extend(nodes)

"""Make an onnx2torch fx module exportable by torch.export: bake constant ONNX inputs into modules.

onnx2torch passes Slice starts/ends, Reshape shapes and Resize scales as tensors (initializers) and
reads them with ``.numpy()``/``.tolist()`` inside ``forward``; under torch.export those are fake
tensors and that fails. Constants are known at conversion time, so Slice and Reshape become static
modules and other ops receive plain values (toolchain-notes: "baking constants").
"""

from __future__ import annotations

from typing import Any

import numpy as np

# onnx2torch modules that turn constant tensor inputs into Python values inside forward().
_READS_CONSTANTS = frozenset({"OnnxSlice", "OnnxReshape", "OnnxResize", "OnnxExpand", "OnnxTile", "OnnxPad"})


class _Const:
    """A constant input handed to an onnx2torch module as plain values (no tensor, nothing to trace)."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = np.asarray(value)

    def detach(self) -> _Const:
        return self

    def cpu(self) -> _Const:
        return self

    def numpy(self) -> np.ndarray:
        return self.value

    def tolist(self) -> list:
        return self.value.tolist()

    def nelement(self) -> int:
        return int(self.value.size)

    def __iter__(self):
        return iter(self.value.tolist())

    def __len__(self) -> int:
        return len(self.value)


def _modules():
    import torch

    class StaticSlice(torch.nn.Module):
        def __init__(self, starts, ends, axes=None, steps=None) -> None:
            super().__init__()
            axes = list(range(len(starts))) if axes is None else list(axes)
            steps = [1] * len(starts) if steps is None else list(steps)
            if any(int(s) < 0 for s in steps):
                raise NotImplementedError("Slice with a negative step")
            self.spec = [(int(a), int(s), int(e), int(st)) for s, e, a, st in zip(starts, ends, axes, steps)]

        def forward(self, x):
            index = [slice(None)] * x.dim()
            for axis, start, end, step in self.spec:
                index[axis] = slice(start, min(end, x.shape[axis]), step)  # ONNX ends may be INT64_MAX
            return x[tuple(index)]

    class StaticReshape(torch.nn.Module):
        def __init__(self, shape) -> None:
            super().__init__()
            self.shape = [int(v) for v in shape]

        def forward(self, x):
            return torch.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(self.shape)])

    class WithConstants(torch.nn.Module):
        def __init__(self, inner, layout, const_kwargs) -> None:
            super().__init__()
            self.inner = inner
            self._layout = layout  # ("x", index into dynamic args) or ("c", _Const)
            self._const_kwargs = const_kwargs  # name -> _Const

        def forward(self, *xs, **kwargs):
            args = [xs[v] if kind == "x" else v for kind, v in self._layout]
            return self.inner(*args, **self._const_kwargs, **kwargs)

    return StaticSlice, StaticReshape, WithConstants


def _constant(module: Any, node: Any) -> np.ndarray | None:
    if getattr(node, "op", None) != "get_attr":
        return None
    value = module
    for part in node.target.split("."):
        value = getattr(value, part)
    return value.detach().cpu().numpy()


def _replacement(inner: Any, args: tuple, consts: list, const_kwargs: dict) -> tuple[Any, list]:
    """(new module, its dynamic args) for one call_module node with constant inputs."""
    static_slice, static_reshape, with_constants = _modules()
    kind = type(inner).__name__
    if kind == "OnnxSlice" and all(c is not None for c in consts[1:]) and not const_kwargs:
        return static_slice(*consts[1:]), [args[0]]
    if kind == "OnnxReshape" and len(consts) == 2 and consts[1] is not None:
        return static_reshape(consts[1]), [args[0]]
    layout, dynamic = [], []
    for arg, const in zip(args, consts):
        if const is None:
            layout.append(("x", len(dynamic)))
            dynamic.append(arg)
        else:
            layout.append(("c", _Const(const)))
    return with_constants(inner, layout, {k: _Const(v) for k, v in const_kwargs.items()}), dynamic


def bake_constants(module: Any) -> Any:
    """Rewrite ``module`` (an onnx2torch fx.GraphModule) in place; returns it recompiled."""
    for node in list(module.graph.nodes):
        if node.op != "call_module":
            continue
        inner = module.get_submodule(node.target)
        if type(inner).__name__ not in _READS_CONSTANTS:
            continue  # ordinary tensor ops (Div, Mul, ...) trace fine with constant tensors
        consts = [_constant(module, a) for a in node.args]
        const_kwargs = {k: c for k, v in node.kwargs.items() if (c := _constant(module, v)) is not None}
        if all(c is None for c in consts[1:]) and not const_kwargs:
            continue
        new, dynamic = _replacement(inner, node.args, consts, const_kwargs)
        name = f"{node.target}_static"
        module.add_submodule(name, new)
        node.target, node.args = name, tuple(dynamic)
        node.kwargs = {k: v for k, v in node.kwargs.items() if k not in const_kwargs}
    module.graph.eliminate_dead_code()
    module.recompile()
    return module

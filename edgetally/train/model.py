"""The models `edge train` fine-tunes, behind one small interface (``Trainable``).

Two families:

- an ONNX YOLOX-family detector (e.g. YOLOX-nano): the graph becomes torch through the converters'
  ONNX -> torch path (onnx2torch, targets/tflite.py); each level's head ends in
  ``Concat(box conv, Sigmoid(obj conv), Sigmoid(cls conv))`` and the graph is cut there, so training
  sees logits;
- the project's small detector architecture (edgetally/train/demo_arch.py) from a state_dict ``.pt``.

Either way ``levels(x)`` gives per stride (box (B, 4, h, w), obj (B, 1, h, w), cls (B, C, h, w))
logits and ``forward`` rebuilds YOLOX's exported head ([1, A, 5 + C], sigmoids applied, per level
``Concat(box, sigmoid(obj), sigmoid(cls))``): the runner's ``yolox`` decoder reads the export
unchanged, and an exported model can be fine-tuned again through the ONNX family. A new class list
replaces the class convolutions; a class whose name the base model knows keeps its weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgetally.errors import UsageError

PRIOR_BIAS = -4.6  # sigmoid 1 %: a new class starts out predicting (almost) nothing


class UnsupportedModel(UsageError):
    """The model is not a family `edge train` can fine-tune (exit 2)."""


class Trainable(nn.Module):
    family = ""

    def __init__(self, input_hw: tuple[int, int], strides: tuple[int, ...], classes: Sequence[str]) -> None:
        super().__init__()
        self.input_hw = input_hw
        self.native_hw = input_hw  # the base model's own input size (an ONNX file's static input)
        self.strides = strides
        self.classes = tuple(classes)

    def levels(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def class_convs(self) -> list[tuple[str, nn.Conv2d]]:
        """(submodule path, conv) of every level's class predictor."""
        raise NotImplementedError

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """(B, A, 5 + C) logits in the head's anchor order (training)."""
        return torch.cat([torch.cat(t, 1).flatten(2) for t in self.levels(x)], 2).permute(0, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, A, 5 + C) as YOLOX exports it: box raw, sigmoid objectness, sigmoid class scores."""
        parts = [torch.cat([b, torch.sigmoid(o), torch.sigmoid(c)], 1).flatten(2) for b, o, c in self.levels(x)]
        return torch.cat(parts, 2).permute(0, 2, 1)

    def freeze(self, fraction: float) -> int:
        """Stop training the first ``fraction`` of the convolutions (graph order: the high-resolution early
        layers, which cost most in the backward pass and hold the most generic features). -> frozen count."""
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        n = int(len(convs) * min(max(fraction, 0.0), 0.9))
        for k, conv in enumerate(convs):
            for p in conv.parameters():
                p.requires_grad_(k >= n)
        return n

    def with_classes(self, classes: Sequence[str]) -> Trainable:
        """Replace the class convolutions for ``classes`` (in place); known names keep their weights."""
        classes = tuple(classes)
        for path, old in self.class_convs():
            new = nn.Conv2d(old.in_channels, len(classes), 1)
            nn.init.normal_(new.weight, 0.0, 0.01)
            nn.init.constant_(new.bias, PRIOR_BIAS)
            with torch.no_grad():
                for k, name in enumerate(classes):
                    if name in self.classes:
                        j = self.classes.index(name)
                        new.weight[k] = old.weight[j]
                        new.bias[k] = old.bias[j]
            parent, _, leaf = path.rpartition(".")
            setattr(self.get_submodule(parent) if parent else self, leaf, new)
        self.classes = classes
        return self


class DemoTrainable(Trainable):
    family = "edgetally-small"

    def __init__(self, net: nn.Module, input_hw: tuple[int, int], classes: Sequence[str]) -> None:
        from edgetally.train.demo_arch import STRIDES

        super().__init__(input_hw, STRIDES, classes)
        self.net = net

    def levels(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        return [(lv[:, :4], lv[:, 4:5], lv[:, 5:]) for lv in self.net.levels(x)]

    def class_convs(self) -> list[tuple[str, nn.Conv2d]]:
        return [(f"net.heads.{i}.cls", h.cls) for i, h in enumerate(self.net.heads)]


class OnnxYoloxTrainable(Trainable):
    family = "yolox-onnx"

    def __init__(
        self,
        graph: Any,
        input_hw: tuple[int, int],
        strides: tuple[int, ...],
        classes: Sequence[str],
        cls_paths: list[str],
    ) -> None:
        super().__init__(input_hw, strides, classes)
        self.graph = graph
        self._cls_paths = cls_paths

    def levels(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        flat = self.graph(x)
        return [tuple(flat[i : i + 3]) for i in range(0, len(flat), 3)]  # type: ignore[misc]

    def class_convs(self) -> list[tuple[str, nn.Conv2d]]:
        return [(f"graph.{p}", self.graph.get_submodule(p)) for p in self._cls_paths]


def _conv_channels(gm: Any, node: Any) -> int | None:
    if node.op == "call_module" and isinstance(gm.get_submodule(node.target), nn.Conv2d):
        return int(gm.get_submodule(node.target).out_channels)
    return None


def _through_sigmoid(gm: Any, node: Any) -> Any:
    """The node a Sigmoid module takes its input from, or None."""
    if node.op == "call_module" and isinstance(gm.get_submodule(node.target), nn.Sigmoid):
        return node.args[0]
    return None


def _head_levels(gm: Any) -> list[tuple[Any, Any, Any]]:
    """(box conv, obj conv, cls conv) nodes of every Concat(box, Sigmoid(obj), Sigmoid(cls)), in graph order."""
    levels = []
    for node in gm.graph.nodes:
        if (
            node.op != "call_module"
            or type(gm.get_submodule(node.target)).__name__ != "OnnxConcat"
            or len(node.args) != 3
        ):
            continue
        box, obj, cls = node.args[0], _through_sigmoid(gm, node.args[1]), _through_sigmoid(gm, node.args[2])
        if obj is None or cls is None or _conv_channels(gm, box) != 4 or _conv_channels(gm, obj) != 1:
            continue
        if _conv_channels(gm, cls) is None:
            continue
        levels.append((box, obj, cls))
    return levels


def _onnx_input_hw(path: Path, proto: Any) -> tuple[int, int]:
    inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim] if len(inputs) == 1 else []
    if len(dims) != 4 or dims[1] != 3 or min(dims[2:]) <= 0:
        raise UnsupportedModel(f"{path}: expected one static input [1, 3, H, W], got {dims or len(inputs)}")
    return int(dims[2]), int(dims[3])


def load_onnx_yolox(path: Path, labels: Sequence[str] | None) -> OnnxYoloxTrainable:
    """An ONNX YOLOX-family detector as a Trainable; UnsupportedModel when the head is not YOLOX's."""
    import onnx
    import onnx.checker

    from edgetally.converters.targets.tflite import load_onnx_as_torch
    from edgetally.errors import ConversionError

    try:
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as exc:
        raise UnsupportedModel(f"{path}: not a valid ONNX model: {exc}") from exc
    try:
        gm, _, proto = load_onnx_as_torch(path)
    except ConversionError as exc:
        raise UnsupportedModel(str(exc)) from exc
    input_hw = _onnx_input_hw(path, proto)
    levels = _head_levels(gm)
    if not levels:
        raise UnsupportedModel(
            f"{path}: not a YOLOX-family detector: no head level ends in "
            "Concat(box conv (4), Sigmoid(obj conv (1)), Sigmoid(class conv)) (supported: YOLOX raw-head "
            "ONNX exports, and the project's small detector as a state_dict .pt)"
        )
    nc = {_conv_channels(gm, c) for _, _, c in levels}
    if len(nc) != 1:
        raise UnsupportedModel(f"{path}: head levels disagree on the number of classes: {sorted(nc)}")
    out = gm.graph.output(tuple(n for level in levels for n in level))
    for node in list(gm.graph.nodes):
        if node.op == "output" and node is not out:
            gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    strides = _strides(gm, input_hw)
    classes = _labels_for(path, labels, nc.pop())
    return OnnxYoloxTrainable(gm, input_hw, strides, classes, [c.target for _, _, c in levels])


def _strides(gm: Any, input_hw: tuple[int, int]) -> tuple[int, ...]:
    with torch.no_grad():
        flat = gm(torch.full((1, 3, *input_hw), 114.0))
    return tuple(round(input_hw[0] / t.shape[2]) for t in flat[::3])


def _labels_for(path: Path, labels: Sequence[str] | None, nc: int) -> tuple[str, ...]:
    """The base model's class names: given, labels.txt beside it, COCO-80 for 80 classes, else class0.."""
    if labels is None:
        beside = path.with_name("labels.txt")
        if beside.is_file():
            labels = [s.strip() for s in beside.read_text(encoding="utf-8").splitlines() if s.strip()]
        elif nc == 80:
            from edgetally.converters.labels import load_labels

            labels = load_labels("coco80")
        else:
            labels = [f"class{i}" for i in range(nc)]
    if len(labels) != nc:
        raise UnsupportedModel(f"{path}: the model predicts {nc} classes but {len(labels)} base labels were given")
    return tuple(labels)


def load_small_detector(path: Path, labels: Sequence[str] | None, input_hw: tuple[int, int] | None) -> DemoTrainable:
    """The project's small detector from a state_dict file; UnsupportedModel if the keys do not fit."""
    from edgetally.train.demo_arch import DemoDetector

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnsupportedModel(f"{path}: not a PyTorch state_dict this command can read safely: {exc}") from exc
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    key = "heads.0.cls.weight"
    if not isinstance(state, dict) or key not in state:
        raise UnsupportedModel(
            f"{path}: not the project's small detector (no '{key}'); supported: YOLOX-family ONNX "
            "and state_dicts of edgetally/train/demo_arch.py"
        )
    nc = int(state[key].shape[0])
    net = DemoDetector(nc)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise UnsupportedModel(f"{path}: weights do not fit the small detector architecture: {exc}") from exc
    return DemoTrainable(net, input_hw or (192, 320), _labels_for(path, labels, nc))


def load_base(
    model: str | Path, labels: Sequence[str] | None = None, input_hw: tuple[int, int] | None = None
) -> Trainable:
    """MODEL (.onnx YOLOX-family or a small-detector .pt) -> Trainable with its own classes, eval mode."""
    path = Path(model)
    if not path.is_file():
        raise UsageError(f"--from {model}: no such file")
    if path.suffix.lower() == ".onnx":
        base: Trainable = load_onnx_yolox(path, labels)
        if input_hw is not None and input_hw != base.input_hw:
            base.input_hw = input_hw  # the graph is convolutional up to the head: checked on a dummy input
            try:
                base.strides = _strides(base.graph, input_hw)
            except Exception as exc:
                raise UsageError(
                    f"{path}: the graph does not run at --input-size {input_hw[0]}x{input_hw[1]}: {exc}"
                ) from exc
    else:
        base = load_small_detector(path, labels, input_hw)
    return base.eval()


def parameter_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def export_onnx(model: Trainable, out: Path) -> float:
    """Write the YOLOX-layout ONNX (opset 13, input 'images', output 'output'); -> max abs diff vs torch."""
    import warnings

    import onnxruntime as ort

    from edgetally.errors import ConversionError

    model.eval()
    example = torch.rand(1, 3, *model.input_hw, generator=torch.Generator().manual_seed(0)) * 255.0
    with torch.no_grad():
        expected = model(example).numpy()
    with warnings.catch_warnings():  # the TorchScript exporter on purpose: no onnxscript needed
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(out), opset_version=13, input_names=["images"], output_names=["output"], dynamo=False
        )
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": example.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if got.shape != expected.shape or diff > 1e-3 * max(1.0, float(np.abs(expected).max())):
        raise ConversionError(
            f"{out}: the exported ONNX differs from torch (shape {got.shape}, max abs diff {diff:.3g})"
        )
    return diff

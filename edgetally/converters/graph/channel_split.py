"""Split EVERY Conv -> SiLU -> depthwise -> SiLU -> Conv chain whose channel ranges are uneven.

The stem split (edgetally.converters.graph.stem_split) showed where full-integer INT8 loses accuracy: a
per-tensor activation scale shared by channels whose ranges differ by orders of magnitude, feeding
a depthwise conv that works channel by channel (and, with batch norm folded into its weights,
often amplifies exactly the small channels). The same pattern recurs through YOLOX's body: every
CSP bottleneck and DWConv is ``1x1 Conv -> SiLU -> depthwise 3x3 -> SiLU -> 1x1 Conv``. Measured
on YOLOX-nano (ai-edge-quantizer per-tensor SNR, 8 calibration images): a depthwise output after
an input spanning 0.03..1.45 per channel came out at SNR 8 (linear) from an input at SNR 152.

Each such chain whose per-channel peaks (after the first SiLU, on the calibration set) span more
than ``GROUP_RATIO`` is rewritten exactly as the stem is: one Conv/SiLU/depthwise/SiLU branch per
channel group, concatenated before the last Conv, whose input channels are permuted to match. Every
branch tensor gets its own INT8 scale; the op kinds are unchanged, so the Edge TPU maps them all.
The first chain is the stem itself, so this rewrite includes the stem split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.graph.stem_split import (
    GROUP_RATIO,
    MAX_GROUPS,
    _branch,
    _replace,
    channel_groups,
    channel_peaks,
)

PREFIX = "dw_split"


def _attr(node: Any, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


class _Finder:
    """Conv -> SiLU -> depthwise Conv -> SiLU -> Conv chains with constant weights and biases."""

    def __init__(self, model: Any) -> None:
        self.consumers: dict[str, list] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.arrays = {i.name: i for i in model.graph.initializer}
        self.nodes = list(model.graph.node)

    def _silu(self, conv: Any) -> tuple[Any, Any] | None:
        after = self.consumers.get(conv.output[0], [])
        sig = next((n for n in after if n.op_type == "Sigmoid"), None)
        mul = next((n for n in after if n.op_type == "Mul" and sig is not None and sig.output[0] in n.input), None)
        return (sig, mul) if sig is not None and mul is not None and len(after) == 2 else None

    def _only_conv(self, tensor: str) -> Any | None:
        after = self.consumers.get(tensor, [])
        return after[0] if len(after) == 1 and after[0].op_type == "Conv" else None

    def _constant(self, conv: Any, bias: bool = True) -> bool:
        needed = conv.input[1:3] if bias else conv.input[1:2]
        return len(conv.input) >= (3 if bias else 2) and all(n in self.arrays for n in needed)

    def _depthwise(self, conv: Any) -> bool:
        from onnx import numpy_helper

        channels = numpy_helper.to_array(self.arrays[conv.input[1]]).shape[0]
        return _attr(conv, "group", 1) == channels

    def chain(self, conv1: Any) -> list | None:
        """[conv1, sigmoid1, mul1, depthwise, sigmoid2, mul2, conv3] starting at ``conv1``, or None."""
        if conv1.op_type != "Conv" or _attr(conv1, "group", 1) != 1 or not self._constant(conv1):
            return None
        first = self._silu(conv1)
        depthwise = self._only_conv(first[1].output[0]) if first else None
        if depthwise is None or not self._constant(depthwise) or not self._depthwise(depthwise):
            return None
        second = self._silu(depthwise)
        conv3 = self._only_conv(second[1].output[0]) if second else None
        if conv3 is None or _attr(conv3, "group", 1) != 1 or not self._constant(conv3, bias=False):
            return None
        return [conv1, *first, depthwise, *second, conv3]

    def all_chains(self) -> list[list]:
        return [c for c in (self.chain(node) for node in self.nodes) if c is not None]


def _rewrite(model: Any, chain: list, groups: list[list[int]], index: int) -> None:
    import onnx
    from onnx import numpy_helper

    prefix = f"{PREFIX}{index}"
    new_nodes, outputs = [], []
    for number, group in enumerate(groups):
        nodes, output = _branch(model.graph, chain, np.asarray(group), number, prefix)
        new_nodes += nodes
        outputs.append(output)
    concat = f"{prefix}_concat"
    new_nodes.append(onnx.helper.make_node("Concat", outputs, [concat], name=concat, axis=1))
    conv3 = chain[6]
    arrays = {i.name: i for i in model.graph.initializer}
    permuted = numpy_helper.to_array(arrays[conv3.input[1]])[:, np.concatenate(groups)]
    model.graph.initializer.append(numpy_helper.from_array(permuted, f"{prefix}_w3"))
    conv3.input[0], conv3.input[1] = concat, f"{prefix}_w3"
    _replace(model.graph, chain[:6], new_nodes, conv3)


def split_depthwise_chains(
    source: Path, target: Path, calibration: CalibrationSet, ratio: float = GROUP_RATIO, max_groups: int = MAX_GROUPS
) -> dict:
    """Write ``target``: ``source`` with every uneven Conv-SiLU-depthwise-SiLU-Conv chain split by channel
    range (groups spanning at most ``ratio``); -> info for report.json. Chains already even are left alone."""
    import onnx

    from edgetally.converters.graph.nodes import name_nodes

    model = onnx.load(str(source))
    name_nodes(model)  # nodes are matched by name when replaced
    chains = _Finder(model).all_chains()
    peaks = channel_peaks(model, [c[2].output[0] for c in chains], calibration) if chains else []
    split: list[dict] = []
    for index, (chain, chain_peaks) in enumerate(zip(chains, peaks)):
        groups = channel_groups(chain_peaks, ratio, max_groups)
        if len(groups) < 2:
            continue
        # Find the chain again: an earlier rewrite may have changed its first conv (another chain's last)
        # and rebuilt the node list.
        fresh = next(c for c in _Finder(model).all_chains() if c[3].name == chain[3].name)
        _rewrite(model, fresh, groups, index)
        split.append(
            {
                "depthwise": chain[3].name,
                "groups": len(groups),
                "peak_ratio": round(float(chain_peaks.max() / max(float(chain_peaks.min()), 1e-9)), 1),
            }
        )
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return {
        "depthwise_chains": len(chains),
        "depthwise_chains_split": len(split),
        "depthwise_split_groups": sum(s["groups"] for s in split),
        "depthwise_split": split,
    }

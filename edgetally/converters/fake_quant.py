"""Simulated INT8 inside a torch student, for the last part of the distillation (quantisation-aware).

A student distilled in float learns weights and activations that are right in float; quantised
afterwards, each layer's rounding adds up (YOLOX-nano, SiLU -> HardSwish on the large maps: the FP32
student agreed with the original at F1 0.86 on unseen frames, its INT8 at 0.76). Training the last
part of the budget through simulated INT8 lets the student learn around the rounding.

The simulation follows what the INT8 converters do (NNCF preset MIXED, onnxruntime QDQ): every
convolution's weights per output channel, symmetric int8 (scale = max |w| / 127); its input per
tensor, asymmetric uint8 over a running min/max of the batches seen. Gradients pass the rounding
straight through (torch's fake-quantise ops), zero outside the range.

Nothing here changes the graph that is written back: the parametrisations and hooks are removed
on exit, the trained float weights stay, and the usual post-training quantisation and gate run on
them.
"""

from __future__ import annotations

from typing import Any

MOMENTUM = 0.01  # running min/max of each convolution's input: about the last 100 batches


def _weight_quantiser() -> Any:
    """A parametrisation (torch needs an nn.Module): the weight as per-output-channel symmetric int8
    would hold it. Built on call: torch is imported only where a conversion needs it."""
    import torch

    class PerChannelInt8(torch.nn.Module):
        def forward(self, weight: Any) -> Any:
            scale = weight.detach().abs().amax(dim=tuple(range(1, weight.dim()))).clamp(min=1e-8) / 127.0
            zero = torch.zeros_like(scale, dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -128, 127)

    return PerChannelInt8()


class _InputRange:
    """Forward pre-hook: the input as per-tensor asymmetric uint8 over a running min/max."""

    def __init__(self) -> None:
        self.low: float | None = None
        self.high: float | None = None

    def __call__(self, _module: Any, inputs: tuple) -> tuple:
        import torch

        x = inputs[0]
        low, high = min(float(x.detach().min()), 0.0), max(float(x.detach().max()), 0.0)
        if self.low is None or self.high is None:
            self.low, self.high = low, high
        else:
            self.low += MOMENTUM * (low - self.low)
            self.high += MOMENTUM * (high - self.high)
        scale = max(self.high - self.low, 1e-8) / 255.0
        zero = int(min(max(round(-self.low / scale), 0), 255))
        return (torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255), *inputs[1:])


FLOAT_STEM = 3  # the converters' best rungs keep the first 3 convolutions float (Strategy float_stem_convs)


class SimulatedInt8:
    """``with SimulatedInt8(student):`` every Conv2d of ``student`` but the first ``float_first`` (in
    graph order) computes on simulated INT8. YOLOX-nano's second convolution reads values up to 90
    (most under 2): quantised per tensor, that one input alone moved the head's boxes by 12 % (relative
    squared error), the other 112 together by 1 %; the INT8 recipes keep the stem float for it."""

    def __init__(self, module: Any, float_first: int = FLOAT_STEM) -> None:
        self.module = module
        self.float_first = float_first
        self._hooks: list = []
        self._convs: list = []

    def __enter__(self) -> SimulatedInt8:
        import torch
        from torch.nn.utils import parametrize

        convs = [m for m in self.module.modules() if isinstance(m, torch.nn.Conv2d)]
        for conv in convs[self.float_first :]:
            parametrize.register_parametrization(conv, "weight", _weight_quantiser())
            self._hooks.append(conv.register_forward_pre_hook(_InputRange()))
            self._convs.append(conv)
        return self

    def __exit__(self, *exc: object) -> None:
        from torch.nn.utils import parametrize

        for hook in self._hooks:
            hook.remove()
        for conv in self._convs:
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=False)
        self._hooks, self._convs = [], []

    @property
    def convolutions(self) -> int:
        return len(self._convs)

"""The project's small detector architecture (PyTorch): the demo's traffic detector, and a base `edge train`
can fine-tune (workstation only: the runner never imports torch).

Anchor-free, three strides (8, 16, 32), about 0.3 M parameters. ``levels(x)`` gives per stride the raw
head (B, 4 + 1 + nc, H/s, W/s): x, y offsets, log w, log h, objectness and class logits. The exported
graph has one output in the YOLOX raw-head layout ``[1, A, 5 + nc]`` (sigmoids applied), so the
runner's ``yolox`` decoder applies (cx = (x + gx) * s, w = exp(w) * s, score = obj * cls).
Input: BGR 0-255 float, letterboxed top-left with pad 114 (YOLOX-nano's contract).
"""

from __future__ import annotations

import torch
from torch import nn

STRIDES: tuple[int, ...] = (8, 16, 32)


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True) if act else nn.Identity(),
        )


class Residual(nn.Module):
    """x + f(x), f a depthwise-separable (cheap, at high resolution) or full 3x3 conv pair."""

    def __init__(self, c: int, depthwise: bool) -> None:
        super().__init__()
        first = ConvBN(c, c, 3, groups=c) if depthwise else ConvBN(c, c, 3)
        self.body = nn.Sequential(first, ConvBN(c, c, 1, act=False))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Head(nn.Module):
    """One level: a 3x3 conv, then separate 1x1 predictors for box (4), objectness (1), classes."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.stem = ConvBN(c, c, 3)
        self.box = nn.Conv2d(c, 4, 1)
        self.obj = nn.Conv2d(c, 1, 1)
        self.cls = nn.Conv2d(c, num_classes, 1)
        nn.init.constant_(self.obj.bias, -4.6)  # prior 1%: most anchors are background
        nn.init.constant_(self.cls.bias, -4.6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return torch.cat([self.box(y), self.obj(y), self.cls(y)], dim=1)  # (B, 5 + nc, H, W)


class DemoDetector(nn.Module):
    def __init__(self, num_classes: int, fpn: int = 48) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.export_mode = False  # True: sigmoid on obj/cls, for ONNX export and inference
        self.stem = nn.Sequential(ConvBN(3, 16, 3, 2), ConvBN(16, 32, 3, 2), Residual(32, True))  # /4
        self.c3 = nn.Sequential(ConvBN(32, 48, 3, 2), Residual(48, True))  # /8
        self.c4 = nn.Sequential(ConvBN(48, 64, 3, 2), Residual(64, False))  # /16
        self.c5 = nn.Sequential(ConvBN(64, 96, 3, 2), Residual(96, False))  # /32
        self.lat3, self.lat4, self.lat5 = ConvBN(48, fpn, 1), ConvBN(64, fpn, 1), ConvBN(96, fpn, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.heads = nn.ModuleList(Head(fpn, num_classes) for _ in STRIDES)

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """BGR 0-255 (B, 3, H, W) -> per stride (B, 5 + nc, H/s, W/s), obj/cls as logits."""
        x = x * (1.0 / 255.0)
        c3 = self.c3(self.stem(x))
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        p5 = self.lat5(c5)
        p4 = self.lat4(c4) + self.up(p5)
        p3 = self.lat3(c3) + self.up(p4)
        return [head(p) for head, p in zip(self.heads, (p3, p4, p5))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """-> (B, A, 5 + nc), anchors stride by stride, row by row (YOLOX order)."""
        flat = torch.cat([lv.flatten(2) for lv in self.levels(x)], dim=2).permute(0, 2, 1)
        if not self.export_mode:
            return flat
        return torch.cat([flat[..., :4], torch.sigmoid(flat[..., 4:])], dim=2)

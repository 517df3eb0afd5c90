"""The demo's tiny traffic detector: the architecture lives in edgetally/train/demo_arch.py (so `edge train`
can fine-tune it); this module keeps the demo's class list, input size and the factory the converters'
PyTorch path calls (``training.demo_model:build_model`` + ``models/demo/detector.pt``, a state_dict).

Input: BGR 0-255 float, [1, 3, 192, 320]; output [1, 1260, 9] in the YOLOX raw-head layout.
"""

from __future__ import annotations

import torch

from edgetally.train.demo_arch import STRIDES, ConvBN, DemoDetector, Head, Residual

__all__ = [
    "INPUT_HW",
    "LABELS",
    "STRIDES",
    "ConvBN",
    "DemoDetector",
    "Head",
    "Residual",
    "build_model",
    "load_detector",
]

LABELS: tuple[str, ...] = ("car", "truck", "bus", "bicycle")
INPUT_HW: tuple[int, int] = (192, 320)  # 640x360 frames letterbox at scale 0.5 (320x180 + 12 rows pad)


def build_model(num_classes: int = len(LABELS), export: bool = True) -> DemoDetector:
    """The factory the converters' PyTorch path calls (``training.demo_model:build_model``).
    export=True: the graph ends in sigmoids, as the yolox decoder expects."""
    model = DemoDetector(num_classes)
    model.export_mode = export
    return model


def load_detector(weights: str, export: bool = True) -> DemoDetector:
    """build_model() + a committed state_dict (loaded with weights_only=True), in eval mode."""
    model = build_model(export=export)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()

"""Inference runtimes behind one small protocol, with a lazy registry.

A runtime only runs the graph: ``infer(tensor) -> outputs``. Decoding, NMS and un-letterboxing
live in ``edgetally.postprocess``. Each runtime module is imported only when an artifact asks for it,
so a board needs just the one runtime its artifacts use.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from edgetally.artifact import Artifact
from edgetally.errors import RuntimeLoadError


class Runtime(Protocol):
    """A loaded model. ``infer`` returns outputs in the manifest's ``outputs`` order, dequantised to float32."""

    name: str

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]: ...

    def close(self) -> None: ...


# runtime name -> (module path, pip extra that provides it)
_REGISTRY: dict[str, tuple[str, str]] = {
    "onnxruntime": ("edgetally.runtimes.onnxruntime", "ort"),
    "openvino": ("edgetally.runtimes.openvino", "openvino"),
    "litert": ("edgetally.runtimes.litert", "litert"),
}


def available_runtimes() -> list[str]:
    return sorted(_REGISTRY)


def load_runtime(artifact: Artifact, threads: int = 2, runtime: str | None = None) -> Runtime:
    """Load ``artifact`` with its manifest's runtime (or ``runtime`` if given)."""
    name = runtime or artifact.manifest.runtime
    if name not in _REGISTRY:
        raise RuntimeLoadError(
            f"runtime '{name}' is not supported on this host; known: {', '.join(available_runtimes())}"
        )
    module_path, extra = _REGISTRY[name]
    try:
        module = importlib.import_module(module_path)
        return module.load(artifact, threads=threads)
    except ModuleNotFoundError as exc:
        raise RuntimeLoadError(
            f"runtime '{name}' needs the '{extra}' extra: pip install 'edgetally[{extra}]' ({exc.msg})"
        ) from exc


def dequantize(array: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (array.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)

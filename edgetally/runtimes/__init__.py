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
from edgetally.runtime_table import RUNTIMES


class Runtime(Protocol):
    """A loaded model. ``infer`` returns outputs in the manifest's ``outputs`` order, dequantised to float32."""

    name: str

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]: ...

    def close(self) -> None: ...


def available_runtimes() -> list[str]:
    return sorted(RUNTIMES)


def load_runtime(artifact: Artifact, threads: int = 2, runtime: str | None = None) -> Runtime:
    """Load ``artifact`` with its manifest's runtime (or ``runtime`` if given)."""
    name = runtime or artifact.manifest.runtime
    if name not in RUNTIMES:
        raise RuntimeLoadError(
            f"runtime '{name}' is not supported on this host; known: {', '.join(available_runtimes())}"
        )
    info = RUNTIMES[name]
    try:
        module = importlib.import_module(info.module)
        return module.load(artifact, threads=threads)
    except ModuleNotFoundError as exc:
        how = info.note or f"pip install 'edgetally[{info.extra}]'"
        raise RuntimeLoadError(f"runtime '{name}' needs the '{info.extra}' extra: {how} ({exc.msg})") from exc


def dequantize(array: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (array.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)

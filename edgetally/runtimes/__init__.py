"""Inference runtimes behind one small protocol, with a lazy registry.

A runtime only runs the graph: ``infer(tensor) -> outputs``. Decoding, NMS and un-letterboxing
live in ``edgetally.postprocess``. Each runtime module is imported only when an artifact asks for it,
so a board needs just the one runtime its artifacts use.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from edgetally.artifact import Artifact, InputSpec
from edgetally.errors import ArtifactError, RuntimeLoadError


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


def check_input(path: object, spec: InputSpec, dtype: str, shape: Sequence[object]) -> None:
    """Refuse, at load, a manifest whose input does not match the model's (dtype, rank, fixed
    dims): otherwise the first frame fails inside the runtime with its own traceback."""
    if dtype != spec.dtype:
        raise ArtifactError(f"{path}: the manifest says input '{spec.name}' is {spec.dtype}, the model takes {dtype}")
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if len(fixed) != len(spec.shape) or any(m is not None and m != d for m, d in zip(fixed, spec.shape)):
        raise ArtifactError(f"{path}: the manifest says input '{spec.name}' has shape {spec.shape}, "
                            f"the model's is {[d if d is not None else '?' for d in fixed]}")


def check_outputs(path: object, wanted: Sequence[str], available: Sequence[str]) -> None:
    """Refuse, at load, manifest output names the model does not have."""
    missing = [n for n in wanted if n not in available]
    if missing:
        raise ArtifactError(f"{path}: manifest output(s) {missing} are not in the model (it has: {list(available)})")


def dequantize(array: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (array.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)

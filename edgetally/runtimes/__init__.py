"""Inference runtimes behind one small protocol, with a lazy registry.

A runtime only runs the graph: ``infer(tensor) -> outputs``. Decoding, NMS and un-letterboxing
live in ``edgetally.postprocess``. Each runtime module is imported only when an artifact asks for it,
so a board needs just the one runtime its artifacts use.

``RUNTIMES`` is the one list of runtimes: manifests, device profiles, ``edge doctor`` and
``edge bundle`` read it. Adding a runtime is one module with ``load(artifact, threads)`` plus its
line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Protocol

import numpy as np
from pydantic import AfterValidator

from edgetally.errors import ArtifactError, RuntimeLoadError

if TYPE_CHECKING:
    from edgetally.artifact import Artifact, InputSpec


class Runtime(Protocol):
    """A loaded model. ``infer`` returns outputs in the manifest's ``outputs`` order, dequantised to float32."""

    name: str

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RuntimeEntry:
    """module: the edgetally module with ``load``; extra: the pip extra a board installs for it;
    provides: importable modules that provide the library (the first that imports wins);
    formats: the manifest formats it runs; install: how to get the library when pip is not the way."""

    name: str
    module: str
    extra: str
    provides: tuple[str, ...]
    formats: tuple[str, ...]
    install: str = ""


RUNTIMES: dict[str, RuntimeEntry] = {
    e.name: e
    for e in (
        RuntimeEntry("onnxruntime", "edgetally.runtimes.onnxruntime", "ort", ("onnxruntime",), ("onnx",)),
        RuntimeEntry("openvino", "edgetally.runtimes.openvino", "openvino", ("openvino",), ("openvino", "onnx")),
        RuntimeEntry(
            "litert", "edgetally.runtimes.litert", "litert", ("ai_edge_litert", "tflite_runtime"), ("tflite",)
        ),
        # JetPack ships TensorRT's Python bindings (apt); the ort extra runs the CPU fallback and the tools.
        RuntimeEntry(
            "tensorrt",
            "edgetally.runtimes.tensorrt",
            "ort",
            ("tensorrt",),
            ("onnx-tensorrt",),
            install="JetPack's TensorRT: apt install python3-libnvinfer, and a venv made with --system-site-packages",
        ),
    )
}
FORMATS: tuple[str, ...] = tuple(dict.fromkeys(f for e in RUNTIMES.values() for f in e.formats))


def available_runtimes() -> list[str]:
    return sorted(RUNTIMES)


def known_runtime(name: str) -> str:
    """``name`` if it is a registered runtime, else ValueError (pydantic reports it)."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; known: {', '.join(available_runtimes())}")
    return name


# The type of a runtime name in manifests and device profiles.
RuntimeName = Annotated[str, AfterValidator(known_runtime)]


def check_format(runtime: str, fmt: str) -> None:
    """ValueError when ``runtime`` cannot run models of format ``fmt`` (manifests and profiles call it)."""
    entry = RUNTIMES.get(runtime)
    if entry is not None and fmt not in entry.formats:
        raise ValueError(f"runtime {runtime!r} runs format(s) {', '.join(entry.formats)}, not {fmt!r}")


def load_runtime(artifact: Artifact, threads: int = 2, runtime: str | None = None) -> Runtime:
    """Load ``artifact`` with its manifest's runtime (or ``runtime`` if given)."""
    name = runtime or artifact.manifest.runtime
    if name not in RUNTIMES:
        raise RuntimeLoadError(
            f"runtime '{name}' is not supported on this host; known: {', '.join(available_runtimes())}"
        )
    entry = RUNTIMES[name]
    try:
        loaded: Runtime = importlib.import_module(entry.module).load(artifact, threads=threads)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("edgetally"):
            raise RuntimeLoadError(f"runtime '{name}' is not built into this edgetally version") from exc
        how = entry.install or f"pip install 'edgetally[{entry.extra}]'"
        raise RuntimeLoadError(f"runtime '{name}' needs {' or '.join(entry.provides)}: {how} ({exc.msg})") from exc
    return loaded


def check_input(path: object, spec: InputSpec, dtype: str, shape: Sequence[object]) -> None:
    """Refuse, at load, a manifest whose input does not match the model's (dtype, rank, fixed
    dims): otherwise the first frame fails inside the runtime with its own traceback."""
    if dtype != spec.dtype:
        raise ArtifactError(f"{path}: the manifest says input '{spec.name}' is {spec.dtype}, the model takes {dtype}")
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if len(fixed) != len(spec.shape) or any(m is not None and m != d for m, d in zip(fixed, spec.shape)):
        raise ArtifactError(
            f"{path}: the manifest says input '{spec.name}' has shape {spec.shape}, "
            f"the model's is {[d if d is not None else '?' for d in fixed]}"
        )


def check_outputs(path: object, wanted: Sequence[str], available: Sequence[str]) -> None:
    """Refuse, at load, manifest output names the model does not have."""
    missing = [n for n in wanted if n not in available]
    if missing:
        raise ArtifactError(f"{path}: manifest output(s) {missing} are not in the model (it has: {list(available)})")


def dequantize(array: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (array.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)

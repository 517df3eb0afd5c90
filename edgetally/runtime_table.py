"""The runtimes the runner knows: the model formats each runs and what a board installs for it.

One table, read by the runtime registry (``edgetally.runtimes``), the manifest (``edgetally.artifact``),
device profiles (``edgetally.profiles``), ``edge doctor`` and ``edge bundle``. The converters' target
registry (``edgetally.converters.targets``) builds artifacts for these runtimes. A leaf module: it
imports nothing from the project, so every layer can read it without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    module: str  # the edgetally.runtimes module that loads artifacts for it
    extra: str  # the pip extra a board installs for it (pyproject.toml)
    imports: tuple[str, ...]  # importable modules that provide it, first found wins (edge doctor)
    formats: tuple[str, ...]  # manifest formats it runs
    note: str = ""


RUNTIMES: dict[str, RuntimeInfo] = {
    info.name: info
    for info in (
        RuntimeInfo("onnxruntime", "edgetally.runtimes.onnxruntime", "ort", ("onnxruntime",), ("onnx",)),
        RuntimeInfo("openvino", "edgetally.runtimes.openvino", "openvino", ("openvino",), ("openvino", "onnx")),
        RuntimeInfo("litert", "edgetally.runtimes.litert", "litert", ("ai_edge_litert", "tflite_runtime"), ("tflite",)),
        RuntimeInfo("tensorrt", "edgetally.runtimes.tensorrt", "tensorrt", ("tensorrt",), ("onnx-tensorrt",),
                    note="TensorRT comes with JetPack (apt install python3-libnvinfer); create the venv with "
                         "--system-site-packages so it is importable"),
    )
}
FORMATS: tuple[str, ...] = tuple(dict.fromkeys(f for info in RUNTIMES.values() for f in info.formats))


def check_runtime(name: str) -> str:
    """``name`` if it is a known runtime; ValueError listing the known ones (pydantic turns it into a located error)."""
    if name not in RUNTIMES:
        raise ValueError(f"runtime {name!r} is not known; known: {', '.join(RUNTIMES)}")
    return name


def check_format(runtime: str, fmt: str) -> None:
    """ValueError when ``runtime`` cannot run models of format ``fmt``."""
    info = RUNTIMES.get(runtime)
    if info is not None and fmt not in info.formats:
        raise ValueError(f"runtime {runtime!r} runs format(s) {', '.join(info.formats)}, not {fmt!r}")

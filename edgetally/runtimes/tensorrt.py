"""TensorRT runtime (NVIDIA Jetson, JetPack 6): the engine is built on the board, cached by hash.

An engine is specific to the GPU and the TensorRT version, so the artifact carries ONNX (the S8
QDQ INT8 model, the FP16 model or the FP32 one) and the first start builds the engine from the
manifest's model file: INT8 + FP16 kernels for an int8 artifact (explicit quantisation from the
Q/DQ nodes), FP16 for fp16, FP32 for fp32. Engines are cached under
``$EDGETALLY_ENGINE_CACHE`` (the systemd drop-in points it at the service's cache directory; else
``$XDG_CACHE_HOME/edgetally/tensorrt``) in a file named by a hash of everything that makes an
engine valid: the model's sha256, the build settings, the TensorRT version and the GPU. One
timing cache per GPU + TensorRT version is shared by every build, so a second model (or a rebuild
after a JetPack update) re-uses the kernel timings measured before. A cached engine that does not
load is rebuilt once.

Works with the TensorRT Python API shipped with JetPack 6 (8.6 and 10.x: the name-based tensor API,
``execute_async_v3``). Device memory comes from the CUDA runtime (libcudart, present wherever
TensorRT is) through ctypes: no pycuda or cuda-python wheel to install.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgetally.artifact import Artifact
from edgetally.errors import ArtifactError, RuntimeLoadError
from edgetally.runtimes import check_outputs

log = logging.getLogger(__name__)

ENV_CACHE = "EDGETALLY_ENGINE_CACHE"
KEY_VERSION = 1  # bump when the way engines are built changes: old cache entries are then ignored
FLAGS = {"int8": ("INT8", "FP16"), "fp16": ("FP16",), "fp32": (), "mixed": ("INT8", "FP16")}


@dataclass(frozen=True)
class BuildSettings:
    flags: tuple[str, ...]  # TensorRT BuilderFlag names
    workspace_mb: int = 1024

    @classmethod
    def for_precision(cls, precision: str) -> BuildSettings:
        return cls(FLAGS[precision])


class Engine(Protocol):
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @property
    def inputs(self) -> list[str]: ...

    @property
    def outputs(self) -> list[str]: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """What the runtime needs from TensorRT (the real one below; tests pass a fake)."""

    version: str
    device: str  # identifies the GPU model (engines do not move between GPUs)

    def build(self, onnx: bytes, settings: BuildSettings, timing_cache: bytes | None) -> tuple[bytes, bytes]: ...

    def open(self, engine: bytes) -> Engine | None: ...  # None: not a loadable engine


def engine_key(model_sha256: str, settings: BuildSettings, backend: Backend) -> str:
    """The cache file name: changes whenever the model, the build settings, TensorRT or the GPU do."""
    blob = json.dumps(
        {
            "v": KEY_VERSION,
            "model": model_sha256,
            "settings": asdict(settings),
            "tensorrt": backend.version,
            "device": backend.device,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def default_cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(ENV_CACHE):
        return Path(env[ENV_CACHE])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "edgetally" / "tensorrt"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside, then rename: a crash mid-write never leaves a truncated engine under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


class EngineCache:
    """Engines by key, and one timing cache per GPU + TensorRT version, in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def engine_path(self, key: str) -> Path:
        return self.directory / f"{key}.engine"

    def timing_path(self, backend: Backend) -> Path:
        tag = hashlib.sha256(f"{backend.version}|{backend.device}".encode()).hexdigest()[:16]
        return self.directory / f"timing-{tag}.cache"

    def load(self, key: str) -> bytes | None:
        path = self.engine_path(key)
        return path.read_bytes() if path.is_file() else None

    def build(self, key: str, backend: Backend, make: Callable[[bytes | None], tuple[bytes, bytes]]) -> bytes:
        """Build with the stored timing cache, then store the engine and the grown timing cache."""
        timing_path = self.timing_path(backend)
        timing = timing_path.read_bytes() if timing_path.is_file() else None
        engine, timing_out = make(timing)
        try:
            _write_atomic(self.engine_path(key), engine)
            if timing_out:
                _write_atomic(timing_path, timing_out)
        except OSError as exc:  # a read-only cache still lets this start run, it just rebuilds next time
            log.warning(
                "cannot cache the TensorRT engine in %s (%s): it will be rebuilt on the next start", self.directory, exc
            )
        return engine


def open_engine(artifact: Artifact, backend: Backend, cache: EngineCache) -> Engine:
    """The artifact's engine: from the cache, else built now (minutes on a Jetson) and cached."""
    settings = BuildSettings.for_precision(artifact.manifest.precision)
    key = engine_key(artifact.manifest.model_sha256, settings, backend)
    cached = cache.load(key)
    engine = backend.open(cached) if cached is not None else None
    if cached is not None and engine is None:
        log.warning(
            "cached TensorRT engine %s does not load (TensorRT or driver changed?): rebuilding", cache.engine_path(key)
        )
    if engine is None:
        log.info(
            "building the TensorRT engine for %s (%s, flags %s): first start only, cached in %s",
            artifact.model_path.name,
            artifact.manifest.precision,
            ",".join(settings.flags) or "fp32",
            cache.directory,
        )
        onnx = artifact.model_path.read_bytes()
        data = cache.build(key, backend, lambda timing: backend.build(onnx, settings, timing))
        engine = backend.open(data)
        if engine is None:
            raise RuntimeLoadError(f"{artifact.model_path}: TensorRT built an engine it cannot load")
    return engine


class TensorRtRuntime:
    name = "tensorrt"

    def __init__(self, artifact: Artifact, backend: Backend, cache: EngineCache) -> None:
        manifest = artifact.manifest
        self._engine = open_engine(artifact, backend, cache)
        self._input = manifest.input.name
        if self._input not in self._engine.inputs:
            raise ArtifactError(
                f"{artifact.model_path}: manifest input '{self._input}' is not in the engine "
                f"(inputs: {self._engine.inputs})"
            )
        self._outputs = [o.name for o in manifest.outputs]
        check_outputs(artifact.model_path, self._outputs, self._engine.outputs)

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        results = self._engine.run({self._input: tensor})
        return [results[name] for name in self._outputs]

    def close(self) -> None:
        self._engine.close()


def load(artifact: Artifact, threads: int = 2) -> TensorRtRuntime:
    """``threads`` does not apply: inference runs on the GPU."""
    from edgetally.runtimes.tensorrt_backend import TrtBackend

    return TensorRtRuntime(artifact, TrtBackend(), EngineCache(default_cache_dir()))

"""The real TensorRT backend of edgetally.runtimes.tensorrt: engine build, engine run, CUDA memory.

Imports ``tensorrt`` (JetPack's python3-libnvinfer) when constructed: a ModuleNotFoundError then
becomes the runtime registry's "needs tensorrt" error. CUDA memory and streams go through the CUDA
runtime library with ctypes (libcudart ships with every CUDA/TensorRT install, pycuda does not).
Uses the name-based tensor API available since TensorRT 8.5 (JetPack 6 has 8.6 or 10.x).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import numpy as np

from edgetally.errors import RuntimeLoadError
from edgetally.runtimes.tensorrt import BuildSettings

_HOST_TO_DEVICE, _DEVICE_TO_HOST = 1, 2
_ATTR_CC_MAJOR, _ATTR_CC_MINOR, _ATTR_SM_COUNT = 75, 76, 16


class Cuda:
    """The few CUDA runtime calls the runtime needs, with errors named."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("cudart") or "libcudart.so"
        try:
            self._lib = ctypes.CDLL(name)
        except OSError as exc:
            raise RuntimeLoadError(f"CUDA runtime library not found ({name}): is this a Jetson with JetPack?") from exc
        self._lib.cudaGetErrorString.restype = ctypes.c_char_p

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            raise RuntimeLoadError(f"CUDA {what} failed: {self._lib.cudaGetErrorString(code).decode()} ({code})")

    def attribute(self, attr: int) -> int:
        value = ctypes.c_int()
        self._check(self._lib.cudaDeviceGetAttribute(ctypes.byref(value), attr, 0), "cudaDeviceGetAttribute")
        return value.value

    def malloc(self, size: int) -> int:
        pointer = ctypes.c_void_p()
        self._check(self._lib.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(size)), "cudaMalloc")
        return int(pointer.value or 0)

    def free(self, pointer: int) -> None:
        self._lib.cudaFree(ctypes.c_void_p(pointer))

    def stream(self) -> int:
        stream = ctypes.c_void_p()
        self._check(self._lib.cudaStreamCreate(ctypes.byref(stream)), "cudaStreamCreate")
        return int(stream.value or 0)

    def copy(self, dst: int, src: int, size: int, kind: int, stream: int) -> None:
        self._check(
            self._lib.cudaMemcpyAsync(
                ctypes.c_void_p(dst), ctypes.c_void_p(src), ctypes.c_size_t(size), kind, ctypes.c_void_p(stream)
            ),
            "cudaMemcpyAsync",
        )

    def sync(self, stream: int) -> None:
        self._check(self._lib.cudaStreamSynchronize(ctypes.c_void_p(stream)), "cudaStreamSynchronize")

    def destroy(self, stream: int) -> None:
        self._lib.cudaStreamDestroy(ctypes.c_void_p(stream))


class TrtEngine:
    """A deserialised engine with device buffers for every I/O tensor (fixed shapes, batch 1)."""

    def __init__(self, trt: Any, engine: Any, cuda: Cuda) -> None:
        self._cuda, self._engine = cuda, engine
        self._context = engine.create_execution_context()
        self._stream = cuda.stream()
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, int] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = tuple(engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise RuntimeLoadError(f"engine tensor '{name}' has a dynamic shape {shape}: export a fixed-size model")
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(name)
            self._host[name] = np.empty(shape, dtype=trt.nptype(engine.get_tensor_dtype(name)))
            self._device[name] = cuda.malloc(self._host[name].nbytes)
            self._context.set_tensor_address(name, self._device[name])

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, array in inputs.items():
            host = np.ascontiguousarray(array, dtype=self._host[name].dtype)
            if host.shape != self._host[name].shape:
                raise ValueError(f"input '{name}' has shape {host.shape}, the engine wants {self._host[name].shape}")
            self._host[name] = host  # keep it alive until the copy has run
            self._cuda.copy(self._device[name], host.ctypes.data, host.nbytes, _HOST_TO_DEVICE, self._stream)
        if not self._context.execute_async_v3(self._stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        results = {}
        for name in self.outputs:
            out = np.empty_like(self._host[name])
            self._cuda.copy(out.ctypes.data, self._device[name], out.nbytes, _DEVICE_TO_HOST, self._stream)
            results[name] = out
        self._cuda.sync(self._stream)
        return results

    def close(self) -> None:
        for pointer in self._device.values():
            self._cuda.free(pointer)
        self._device.clear()
        self._cuda.destroy(self._stream)
        self._context = self._engine = None


class TrtBackend:
    """TensorRT itself: parse ONNX, build a serialised engine with a timing cache, deserialise it."""

    def __init__(self) -> None:
        import tensorrt as trt  # ModuleNotFoundError -> "runtime 'tensorrt' needs ..." in load_runtime

        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._cuda = Cuda()
        self._runtime = trt.Runtime(self._logger)  # outlives every engine it deserialises
        self.version = trt.__version__
        major, minor = self._cuda.attribute(_ATTR_CC_MAJOR), self._cuda.attribute(_ATTR_CC_MINOR)
        self.device = f"sm{major}{minor}-{self._cuda.attribute(_ATTR_SM_COUNT)}sm"

    def _network(self, builder: Any, onnx: bytes) -> Any:
        trt = self._trt
        explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)  # implied in TensorRT 10
        network = builder.create_network(0 if explicit is None else 1 << int(explicit))
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeLoadError(f"TensorRT cannot parse the ONNX model: {errors}")
        return network, parser

    def build(self, onnx: bytes, settings: BuildSettings, timing_cache: bytes | None) -> tuple[bytes, bytes]:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network, _parser = self._network(builder, onnx)  # the parser must outlive the build
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
        for flag in settings.flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
        config.set_timing_cache(config.create_timing_cache(timing_cache or b""), False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeLoadError("TensorRT could not build an engine from the model (see the TensorRT log above)")
        return bytes(serialized), bytes(config.get_timing_cache().serialize())

    def open(self, engine: bytes) -> TrtEngine | None:
        deserialized = self._runtime.deserialize_cuda_engine(engine)
        return None if deserialized is None else TrtEngine(self._trt, deserialized, self._cuda)

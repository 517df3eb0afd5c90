"""A stand-in for TensorRT where no NVIDIA GPU is present: 'engines' are the ONNX bytes, run by onnxruntime.

It implements edgetally.runtimes.tensorrt's Backend protocol, so the runtime's own code (cache keys,
engine paths, timing-cache hand-over, rebuild of a bad engine, the manifest's input/output contract)
runs for real; only the GPU work is replaced. It records what it was asked to do.
"""

from __future__ import annotations

import numpy as np

from edgetally.runtimes.tensorrt import BuildSettings

MAGIC = b"FAKE-TRT-ENGINE\n"


class FakeEngine:
    def __init__(self, onnx: bytes) -> None:
        import onnxruntime as ort

        self._session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self._session.get_inputs()]
        self.outputs = [o.name for o in self._session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self._session.run(self.outputs, inputs), strict=True))

    def close(self) -> None:
        self._session = None


class FakeBackend:
    def __init__(self, version: str = "10.3.0", device: str = "sm87-8sm") -> None:
        self.version, self.device = version, device
        self.builds: list[tuple[BuildSettings, bytes | None]] = []  # (settings, timing cache handed in)
        self.opened = 0

    def build(self, onnx: bytes, settings: BuildSettings, timing_cache: bytes | None) -> tuple[bytes, bytes]:
        self.builds.append((settings, timing_cache))
        timing = (timing_cache or b"") + f"timings for build {len(self.builds)}\n".encode()
        return MAGIC + onnx, timing

    def open(self, engine: bytes) -> FakeEngine | None:
        if not engine.startswith(MAGIC):
            return None  # what deserialize_cuda_engine does with a file that is not an engine
        self.opened += 1
        return FakeEngine(engine[len(MAGIC) :])

"""OpenVINO (CPU) runtime for IR (.xml + .bin) or ONNX artifacts.

FP32 artifacts compile with ``INFERENCE_PRECISION_HINT=f32``: on CPUs with bf16, OpenVINO would
otherwise run "FP32" as bf16 silently (toolchain-notes), which is not the reference the accuracy
gate compares against. INT8 artifacts keep the plugin's default for their remaining float ops.
"""

from __future__ import annotations

import numpy as np
import openvino as ov

from edgetally.artifact import Artifact
from edgetally.errors import ArtifactError, RuntimeLoadError
from edgetally.runtimes import check_input, check_outputs, dequantize


def compile_config(precision: str, threads: int) -> dict[str, str]:
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": str(max(1, threads)),
        "NUM_STREAMS": "1",
    }
    if precision == "fp32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


class OpenVinoRuntime:
    name = "openvino"

    def __init__(self, artifact: Artifact, threads: int) -> None:
        manifest = artifact.manifest
        path = artifact.model_path
        try:
            core = ov.Core()
            model = core.read_model(str(path))
            self._compiled = core.compile_model(model, "CPU", compile_config(manifest.precision, threads))
        except Exception as exc:  # OpenVINO raises RuntimeError with the plugin's message
            raise RuntimeLoadError(f"{path}: OpenVINO cannot load the model: {exc}") from exc
        names = {n for port in self._compiled.inputs for n in port.get_names()}
        if manifest.input.name not in names:
            raise ArtifactError(
                f"{path}: manifest input '{manifest.input.name}' is not in the model (inputs: {sorted(names)})"
            )
        port = self._compiled.input(manifest.input.name)
        shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        check_input(path, manifest.input, np.dtype(port.get_element_type().to_dtype()).name, shape)
        check_outputs(
            path, [o.name for o in manifest.outputs], [n for out in self._compiled.outputs for n in out.get_names()]
        )
        self._outputs = [self._compiled.output(o.name) for o in manifest.outputs]
        self._quant = [o.quantization for o in manifest.outputs]
        self._request = self._compiled.create_infer_request()
        self._input = self._compiled.input(manifest.input.name)

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        # share_inputs: no copy of the tensor into the request (~0.6 ms a frame); it is not touched meanwhile.
        result = self._request.infer({self._input: tensor}, share_inputs=True)
        # copy(): the request's output buffers are overwritten by the next inference
        outputs = [np.array(result[port], copy=True) for port in self._outputs]
        return [o if q is None else dequantize(o, q.scale, q.zero_point) for o, q in zip(outputs, self._quant)]

    def close(self) -> None:
        self._request = None  # type: ignore[assignment]
        self._compiled = None  # type: ignore[assignment]


def load(artifact: Artifact, threads: int = 2) -> OpenVinoRuntime:
    return OpenVinoRuntime(artifact, threads)

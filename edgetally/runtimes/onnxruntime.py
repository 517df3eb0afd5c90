"""ONNX Runtime (CPU) runtime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from edgetally.artifact import Artifact
from edgetally.errors import ArtifactError, RuntimeLoadError
from edgetally.runtimes import check_input, check_outputs, dequantize

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
}


def session_options(threads: int) -> ort.SessionOptions:
    """The runner's session settings (benchmarks time artifacts with exactly these)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle ORT workers spin by default; on a 2-4 core board that steals the CPU the capture and
    # tracking threads need between inferences.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, artifact: Artifact, threads: int) -> None:
        options = session_options(threads)
        path = artifact.model_path
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise RuntimeLoadError(f"{path}: onnxruntime cannot load the model: {exc}") from exc
        manifest = artifact.manifest
        self._input_name = manifest.input.name
        self._output_names = [o.name for o in manifest.outputs]
        self._quant = [o.quantization for o in manifest.outputs]
        inputs = {i.name: i for i in self._session.get_inputs()}
        if self._input_name not in inputs:
            raise ArtifactError(
                f"{path}: manifest input '{self._input_name}' is not in the model (model inputs: {list(inputs)})"
            )
        model_input = inputs[self._input_name]
        check_input(path, manifest.input, _ORT_TYPES.get(model_input.type, model_input.type), model_input.shape)
        check_outputs(path, self._output_names, [o.name for o in self._session.get_outputs()])

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        outputs = self._session.run(self._output_names, {self._input_name: tensor})
        return [o if q is None else dequantize(o, q.scale, q.zero_point) for o, q in zip(outputs, self._quant)]

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]


def load(artifact: Artifact, threads: int = 2) -> OnnxRuntime:
    return OnnxRuntime(artifact, threads)

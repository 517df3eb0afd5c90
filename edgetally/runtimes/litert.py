"""LiteRT (TFLite) runtime: ai-edge-litert, falling back to tflite_runtime.

ai-edge-litert ships XNNPACK's fast INT8 kernels (11-14 ms vs about 108 ms for tflite-runtime 2.14
on YOLOX-nano, toolchain-notes); tflite_runtime is the fallback for boards where only it installs.
Full-integer models take int8/uint8 input and give int8/uint8 outputs: the Preprocessor quantises
the input from the manifest (uint8 with scale 1 and zero point 0 is just the raw pixels), and
outputs are dequantised here with the manifest's parameters. A packed output exported as parts
(``OutputSpec.parts``: boxes and scores, each with its own scale) is dequantised part by part and
concatenated back into the layout the decoder reads.
"""

from __future__ import annotations

import numpy as np

from edgetally.artifact import Artifact, Quantization
from edgetally.errors import ArtifactError, RuntimeLoadError
from edgetally.runtimes import check_input, dequantize


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ModuleNotFoundError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError("neither ai_edge_litert nor tflite_runtime is installed", name=exc.name) from exc
    return Interpreter


def _by_name(details: list[dict], name: str, path: object) -> dict:
    for item in details:
        if item["name"] == name:
            return item
    known = [d["name"] for d in details]
    raise ArtifactError(f"{path}: tensor '{name}' named in the manifest is not in the model (has: {known})")


class LiteRtRuntime:
    name = "litert"

    def __init__(self, artifact: Artifact, threads: int) -> None:
        interpreter_class = _interpreter_class()
        path = artifact.model_path
        manifest = artifact.manifest
        try:
            self._interpreter = interpreter_class(model_path=str(path), num_threads=max(1, threads))
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RuntimeLoadError(f"{path}: LiteRT cannot load the model: {exc}") from exc
        model_input = _by_name(self._interpreter.get_input_details(), manifest.input.name, path)
        check_input(path, manifest.input, np.dtype(model_input["dtype"]).name, list(model_input["shape"]))
        self._input = model_input["index"]
        details = self._interpreter.get_output_details()
        # Per logical output: the (tensor index, quantisation) of each model tensor that makes it up.
        self._outputs = [
            [(_by_name(details, t.name, path)["index"], t.quantization) for t in (o.parts or [o])]
            for o in manifest.outputs
        ]

    def _read(self, index: int, quant: Quantization | None) -> np.ndarray:
        array = self._interpreter.get_tensor(index)  # get_tensor copies
        return array if quant is None else dequantize(array, quant.scale, quant.zero_point)

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        results = []
        for parts in self._outputs:
            arrays = [self._read(index, quant) for index, quant in parts]
            results.append(arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=-1))
        return results

    def close(self) -> None:
        self._interpreter = None


def load(artifact: Artifact, threads: int = 2) -> LiteRtRuntime:
    return LiteRtRuntime(artifact, threads)
